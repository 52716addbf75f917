"""Full ranking of one batch of users: masking, pessimistic target ranks and top-K lists.

Rules (PROTOCOL.md):
- the padding item and every history item get a score of -inf (not 0: dot-product scores can be negative);
- the target itself is never masked, even when the user interacted with it before (repeat purchases are
  kept as separate interactions, so a target can occur in its own history; masking it would make the hit
  impossible);
- ties are pessimistic: the target ranks after every other item with an equal score, so a model that
  scores everything equally gets the worst rank, not the best;
- a NaN target score counts as the worst possible rank.
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
    """Rank each row's target among all items; returns (0-based ranks [B], top items [B, top_k]).

    ``scores`` [B, n_items + 1] is modified in place. ``hist_rows``/``hist_items`` list the (row, item) pairs
    to mask.
    """
    n_items = scores.shape[1] - 1
    rows = torch.arange(len(targets), device=scores.device)
    target_scores = scores[rows, targets].clone()
    scores[:, 0] = float("-inf")
    scores[hist_rows, hist_items] = float("-inf")
    scores[rows, targets] = target_scores
    # ">=" counts the target itself once, so subtracting 1 leaves exactly the items ranked at or above it
    ranks = (scores >= target_scores[:, None]).sum(dim=1) - 1
    ranks = torch.where(torch.isnan(target_scores), torch.full_like(ranks, n_items - 1), ranks)
    top = torch.topk(scores, k=min(top_k, n_items + 1), dim=1).indices
    return ranks, top
