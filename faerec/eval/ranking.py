"""Full ranking of one batch of users: the history mask, pessimistic target ranks and top-K lists.

Rules (docs/PROTOCOL.md):
- the padding item always gets a score of -inf (not 0: dot-product scores can be negative);
- the history mask depends on the model's input only, never on the answer. Under the ``novel`` protocol
  (the default) every item of the input history is masked, the target included when it repeats a history
  item: such a "repeat target" can then never be hit, and the evaluator counts those users. Under
  ``repeat`` no history is masked at all. Exempting a repeat target from the mask while masking the rest of
  the history would leave it as the only history item standing: a free hit for any model that likes
  recently seen items;
- ties are pessimistic: the target ranks after every other item with an equal score, so a model that
  scores everything equally gets the worst rank, not the best;
- a NaN or masked (-inf) target score counts as a miss.
"""

from __future__ import annotations

import torch

from faerec.runs.config import PROTOCOLS


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; expected one of {PROTOCOLS}")
    return protocol


@torch.no_grad()
def mask_scores(
    scores: torch.Tensor, hist_rows: torch.Tensor, hist_items: torch.Tensor, protocol: str = "novel"
) -> torch.Tensor:
    """Mask ``scores`` [B, n_items + 1] in place: the padding item, and under ``novel`` every (row, item)
    history pair. The one home of the candidate-set rule, used by evaluation and recommendation alike."""
    check_protocol(protocol)
    scores[:, 0] = float("-inf")
    if protocol == "novel":
        scores[hist_rows, hist_items] = float("-inf")
    return scores


@torch.no_grad()
def rank_targets(
    scores: torch.Tensor,
    targets: torch.Tensor,
    hist_rows: torch.Tensor,
    hist_items: torch.Tensor,
    top_k: int,
    protocol: str = "novel",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank each row's target among all items; returns (ranks [B], top items [B, top_k]).

    ``ranks`` are 0-based and exact below ``top_k``; a target outside the top-``top_k`` gets ``top_k``
    ("top_k or worse"), which is all that HR/NDCG@K for K <= top_k need. They come from one top-(k+1)
    selection instead of a comparison against every item: if at most k items (target included) score >= the
    target, they are all among the k + 1 largest scores, so counting there is exact. In the top lists, slots
    holding masked items (only possible with fewer than top_k unmasked items) are 0.
    ``scores`` [B, n_items + 1] is modified in place. ``hist_rows``/``hist_items`` list the (row, item) pairs
    of the input histories; the target is read only after masking, so it cannot change the candidate set.
    """
    mask_scores(scores, hist_rows, hist_items, protocol)
    rows = torch.arange(len(targets), device=scores.device)
    target_scores = scores[rows, targets]
    values, top = torch.topk(scores, k=min(top_k + 1, scores.shape[1]), dim=1)
    at_or_above = (values >= target_scores[:, None]).sum(dim=1)  # includes the target itself
    ranks = (at_or_above - 1).clamp_(max=top_k)
    missed = torch.isnan(target_scores) | (target_scores == float("-inf"))
    ranks = torch.where(missed, torch.full_like(ranks, top_k), ranks)
    top = top[:, :top_k].masked_fill_(values[:, :top_k] == float("-inf"), 0)
    return ranks, top
