"""The training objectives: BCE (paper eq. 13), item-level InfoNCE (eq. 5), feature-level Barlow Twins with
popularity grouping (eqs. 6-10) and the cosine curriculum (eqs. 11-12).

The alignment losses take each DISTINCT item of the batch once, with ``counts`` = how often it occurs among
the batch items (input items and sampled negatives). Both are exactly the authors' occurrence-level losses
(every occurrence a row; other occurrences of the same item masked out of the negatives) whenever all
occurrences of an item share one embedding, which holds here because an item's projection is computed once
per batch:
- InfoNCE: an occurrence row of item u has the positive (u, u) and, as negatives, every occurrence of every
  other item v, i.e. c_v copies of exp(s_uv); so its loss is logsumexp_v(s_uv + log c_v [v != u]) - s_uu, and
  the occurrence mean weights item u by c_u. Cost O(U^2 d) instead of O(N^2 d), N = occurrences >= U.
- Barlow Twins: means, unbiased standard deviations, the cross-correlation matrix and the batch median are
  the occurrence-level statistics written with counts as weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from faerec.device import similarity_in_bf16
from faerec.models.layers import take_where

STD_EPS = 1e-5  # added to the batch standard deviation before dividing (as the authors' code)
# The [U, U] InfoNCE buffers (~25-35 MB each on Beauty, several alive in a backward pass) are padded to a multiple
# of this many rows: with a different U every batch, exact sizes never fit the holes the last batch left in the
# C heap, which then grows (fragments) and pays first-touch page faults on every new block; a few repeating sizes
# are reused. Padded keys have weight 0 and padded rows are sliced off, so the loss and its gradient are
# exactly those of the unpadded matrix.
INFONCE_ROWS_STEP = 256
LSE_BLOCK_ROWS = 256  # rows per block of the InfoNCE logsumexp: a [256, U] float32 temporary


def bce_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of -log sigmoid(pos) - log(1 - sigmoid(neg)); 0 for an empty batch."""
    per_position = F.softplus(-pos_logits) + F.softplus(neg_logits)
    return per_position.sum() / max(per_position.numel(), 1)


class _RowLogSumExp(torch.autograd.Function):
    """lse_r = log sum_c w_c exp((left @ right.T)_rc) for [R, D] and [C, D] operands and [C] column weights,
    of which the first ``keys`` columns are real (the rest padding of weight 0), with a single [R, C] buffer.

    ``F.cross_entropy`` on a materialised logits matrix keeps its log-softmax output for the backward and
    builds a dense one-hot gradient, so a step held three to four [U, U] float32 buffers; on Beauty (U ~ 3,000)
    filling and first-touching those, not arithmetic, was most of the InfoNCE time. Here the logits buffer is
    owned by this function: the forward walks it in blocks of rows, keeps the [R] result and overwrites the
    logits with e_rc = exp(logit_rc - row max); the row sum is the product of that block with the weights.
    The backward never scales the [R, C] matrix: with s_r = grad_r / total_r, d lse_r / d logit_rc times the
    gradient is s_r e_rc w_c, so the operands' gradients are s * (E @ (w * right)) and w * (E.T @ (s * left)),
    two products and scalings of [*, D] operands only.
    The weights sit outside the product instead of as an extra log(w) column of the operands because the
    bf16 kernels work in K blocks of 32: D = 128 plus one column cost a fifth block, 129 against 128 columns
    took 9.7 against 7.0 ms for a [3,328, 3,328] product (and the log-weights rode in bf16).
    bfloat16 operands (bf16 similarity) give bf16 logits with float32 accumulation; each block is widened to
    float32 for the exponentials, which are stored back in bf16 (relative error 2^-8 per entry). The backward
    can run once.
    """

    @staticmethod
    def forward(ctx, left: torch.Tensor, right: torch.Tensor, weights: torch.Tensor, keys: int) -> torch.Tensor:
        exps = left @ right.T
        wide_dtype = torch.promote_types(exps.dtype, torch.float32)  # bf16 -> float32; float64 stays
        weights = weights.to(wide_dtype)
        lse = torch.empty(exps.shape[0], dtype=wide_dtype, device=exps.device)
        totals = torch.empty_like(lse)
        # float32 logits are exponentiated in place; bf16 ones are widened into one reused [256, C] scratch.
        # Every step writes into existing memory (sub_, exp_, copy_): on Beauty-sized batches this took 40 %
        # less CPU than allocating a temporary per step (float32), and no more for bf16.
        in_place = exps.dtype == wide_dtype
        scratch = None if in_place else exps.new_empty((min(LSE_BLOCK_ROWS, exps.shape[0]), exps.shape[1]),
                                                       dtype=wide_dtype)
        for start in range(0, exps.shape[0], LSE_BLOCK_ROWS):
            block = exps[start : start + LSE_BLOCK_ROWS]
            wide = block if in_place else scratch[: block.shape[0]].copy_(block)
            # exponentials of the first ``keys`` columns only; padded columns (logit 0, weight 0) are set to 0:
            # in the row max they would underflow a row whose real logits are all below ~-87 to a zero sum, and
            # exp(0 - max) would overflow it to inf * 0 = NaN
            real = wide[:, :keys]
            top = real.amax(1)
            real.sub_(top[:, None]).exp_()
            wide[:, keys:] = 0
            total = wide @ weights
            lse[start : start + LSE_BLOCK_ROWS] = top + total.log()
            totals[start : start + LSE_BLOCK_ROWS] = total
            if not in_place:
                block.copy_(wide)
        ctx.save_for_backward(left, right, weights, exps, totals)
        ctx.used = False
        return lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_lse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        if ctx.used:
            raise RuntimeError("item_infonce: its backward reuses the logits' memory and can run only once")
        ctx.used = True
        left, right, weights, exps, totals = ctx.saved_tensors
        row_scale = (grad_lse / totals)[:, None]
        column_scale = weights[:, None]
        grad_left = (exps @ (right * column_scale.to(right.dtype))) * row_scale.to(left.dtype)
        grad_right = (exps.T @ (left * row_scale.to(left.dtype))) * column_scale.to(right.dtype)
        return grad_left, grad_right, None, None


def item_infonce(
    id_vecs: torch.Tensor, llm_vecs: torch.Tensor, counts: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE from ID to LLM embeddings over distinct items [U, D] with occurrence counts [U] (see module doc)."""
    weights = counts.to(id_vecs.dtype)
    log_counts = weights.log()
    left = F.normalize(id_vecs, dim=-1) / temperature
    right = F.normalize(llm_vecs, dim=-1)
    # One [U, U] matmul and a count-weighted row logsumexp (_RowLogSumExp) give lse_u = log sum_v c_v exp(s_uv),
    # the only [U, U] work. The row loss ce_u = lse_u - s_uu - log c_u counts the positive column c_u times
    # instead of once; removing the extra (c_u - 1) exp(s_uu), a share (c_u - 1) / c_u * exp(-ce_u) < 1 of the
    # sum, gives loss_u = ce_u + log c_u + log1p(-(c_u - 1) / c_u * exp(-ce_u)).
    rows = left.shape[0]
    pad = -rows % INFONCE_ROWS_STEP
    if pad:  # padded rows are zero and sliced off; padded keys are zero with weight 0, so they add nothing
        left, right = F.pad(left, (0, 0, 0, pad)), F.pad(right, (0, 0, 0, pad))
    if similarity_in_bf16():  # bf16 operands and logits, float32 accumulation and softmax (faerec.device)
        left, right = left.bfloat16(), right.bfloat16()
    lse = _RowLogSumExp.apply(left, right, F.pad(weights, (0, pad)), rows)[:rows]
    # s_uu from the same (possibly bf16-rounded) operands as the matmul, in float32
    positive = (left[:rows].float() * right[:rows].float()).sum(1)
    ce = (lse - positive - log_counts).clamp_min(0.0)
    per_item = ce + log_counts + torch.log1p(-(weights - 1) / weights * torch.exp(-ce))
    return (per_item * weights).sum() / weights.sum()


def _standardise(x: torch.Tensor, weights: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    mean = (weights[:, None] * x).sum(0) / total
    centred = x - mean
    variance = (weights[:, None] * centred.pow(2)).sum(0) / (total - 1)  # unbiased, like Tensor.std
    # clamp: a constant column (std 0) must give a 0 gradient, not sqrt'(0) = inf -> NaN
    return centred / (variance.clamp_min(1e-12).sqrt() + STD_EPS)


def barlow_twins(
    a: torch.Tensor, b: torch.Tensor, counts: torch.Tensor, off_diagonal_weight: float
) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + w * sum_{i != j} C_ij^2, C the cross-correlation of batch-standardised a and b."""
    weights = counts.to(a.dtype)
    total = weights.sum()
    za, zb = _standardise(a, weights, total), _standardise(b, weights, total)
    corr = (za * weights[:, None]).T @ zb / total  # [D, D]
    diagonal = corr.diagonal()
    off_diagonal = corr.pow(2).sum() - diagonal.pow(2).sum()
    return (diagonal - 1).pow(2).sum() + off_diagonal_weight * off_diagonal


def weighted_lower_median(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``torch.median`` (the lower middle element) of ``values`` repeated ``counts`` times."""
    order = torch.argsort(values)
    cumulative = torch.cumsum(counts[order], 0)
    middle = (cumulative[-1] - 1) // 2  # 0-based index of the lower median among the occurrences
    return values[order][torch.searchsorted(cumulative, middle.reshape(1), right=True)].squeeze(0)


def feature_alignment(
    id_vecs: torch.Tensor,
    llm_vecs: torch.Tensor,
    counts: torch.Tensor,
    popularity: torch.Tensor,
    off_diagonal_weight: float,
    grouped: bool,
) -> torch.Tensor:
    """Barlow Twins summed over the popularity groups: items at or above the batch's (occurrence) median
    training popularity and items below it; one group of all items when ``grouped`` is False. A group with
    fewer than 2 occurrences contributes 0 (no batch statistics)."""
    if grouped:
        high = popularity >= weighted_lower_median(popularity, counts)
        groups = [high, ~high]
    else:
        groups = [torch.ones_like(counts, dtype=torch.bool)]
    loss = id_vecs.new_zeros(())
    for members in groups:
        if int(counts[members].sum()) > 1:
            loss = loss + barlow_twins(take_where(id_vecs, members), take_where(llm_vecs, members), counts[members],
                                       off_diagonal_weight)
    return loss


def curriculum_weights(epoch: int, w_min: float, w_max: float, period: float) -> tuple[float, float]:
    """(w_item, w_feat): w_item = (w_max - w_min)(1 + cos(2 pi epoch / period)) / 2 + w_min, w_feat = 1 - w_item."""
    w_item = (w_max - w_min) * (1 + math.cos(2 * math.pi * epoch / period)) / 2 + w_min
    return w_item, 1.0 - w_item
