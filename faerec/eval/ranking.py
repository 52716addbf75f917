"""Full ranking of one batch of users: masking, pessimistic target ranks and top-K lists.

Rules (PROTOCOL.md):
- the padding item and every history item get a score of -inf (not 0: dot-product scores can be negative);
- the target itself is never masked, even when the user interacted with it before (repeat purchases are
  kept as separate interactions, so a target can occur in its own history; masking it would make the hit
  impossible);
- ties are pessimistic: the target ranks after every other item with an equal score, so a model that
  scores everything equally gets the worst rank, not the best;
- a NaN target score counts as a miss.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def rank_targets(
    scores: torch.Tensor,
    targets: torch.Tensor,
    hist_rows: torch.Tensor,
    hist_items: torch.Tensor,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank each row's target among all items; returns (ranks [B], top items [B, top_k]).

    ``ranks`` are 0-based and exact below ``top_k``; a target outside the top-``top_k`` gets ``top_k``
    ("top_k or worse"), which is all that HR/NDCG@K for K <= top_k need. They come from one top-(k+1)
    selection instead of a comparison against every item: if at most k items (target included) score >= the
    target, they are all among the k + 1 largest scores, so counting there is exact. In the top lists, slots
    holding masked items (only possible with fewer than top_k unmasked items) are 0.
    ``scores`` [B, n_items + 1] is modified in place. ``hist_rows``/``hist_items`` list the (row, item) pairs
    to mask.
    """
    rows = torch.arange(len(targets), device=scores.device)
    target_scores = scores[rows, targets].clone()
    scores[:, 0] = float("-inf")
    scores[hist_rows, hist_items] = float("-inf")
    scores[rows, targets] = target_scores
    values, top = torch.topk(scores, k=min(top_k + 1, scores.shape[1]), dim=1)
    at_or_above = (values >= target_scores[:, None]).sum(dim=1)  # includes the target itself
    ranks = (at_or_above - 1).clamp_(max=top_k)
    ranks = torch.where(torch.isnan(target_scores), torch.full_like(ranks, top_k), ranks)
    top = top[:, :top_k].masked_fill_(values[:, :top_k] == float("-inf"), 0)
    return ranks, top
