"""Ranking metrics from 0-based target ranks (docs/PROTOCOL.md, "Ranking and metrics"; docs/CONTRACT.md metrics.json).

Every evaluated user has exactly one target, so with rank r (0 = first place):
  HR@K   = 1 if r < K else 0
  NDCG@K = 1 / log2(r + 2) if r < K else 0   (the ideal DCG of a single relevant item is 1)
Buckets split users by their *target item*: head / tail (Pareto split), cold (target never seen in training),
and five popularity groups by the target's training count. Cold targets (count 0) are tail items and belong
to no group (the groups start at 1). A bucket without users reports ``None`` for its metrics, never 0.

Coverage@K (paper eq. 15) = |union of all users' top-K lists| / |items|, and Tail-Coverage@K the same over
tail items only; padding (item 0) is never counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faerec.data.split import POPULARITY_GROUPS, head_by_share

__all__ = ["COVERAGE_KS", "KS", "POPULARITY_GROUPS", "Popularity", "coverage", "head_by_share", "hit_and_ndcg",
           "summarize"]

KS: tuple[int, ...] = (5, 10, 20)
COVERAGE_KS: tuple[int, ...] = (10, 20)
@dataclass(frozen=True)
class Popularity:
    """Item popularity used to bucket targets: ``counts`` and ``is_head`` are indexed by item_idx (0 = padding)."""

    counts: np.ndarray  # int64 [n_items + 1]
    is_head: np.ndarray  # bool  [n_items + 1], False at 0
    label: str = "train"  # "train" (docs/PROTOCOL.md) or "paper" (full-sequence counts, the official code's choice)

    @property
    def n_items(self) -> int:
        return len(self.counts) - 1


def hit_and_ndcg(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float | None]:
    """Mean HR@K and NDCG@K over ``ranks`` (0-based); ``None`` values for an empty selection."""
    out: dict[str, float | None] = {}
    if len(ranks) == 0:
        for k in ks:
            out[f"hr@{k}"] = None
            out[f"ndcg@{k}"] = None
        return out
    gain = 1.0 / np.log2(ranks.astype(np.float64) + 2.0)
    for k in ks:
        inside = ranks < k
        out[f"hr@{k}"] = float(inside.mean())
        out[f"ndcg@{k}"] = float(np.where(inside, gain, 0.0).mean())
    return out


def coverage(top_items: np.ndarray, popularity: Popularity, ks: tuple[int, ...] = COVERAGE_KS) -> dict[str, float]:
    """Coverage@K and Tail-Coverage@K from every user's ranked top list ``top_items`` [U, >= max(ks)]."""
    n_items = popularity.n_items
    tail = ~popularity.is_head
    tail[0] = False
    n_tail = int(tail.sum())
    out: dict[str, float] = {}
    for k in ks:
        seen = np.zeros(n_items + 1, dtype=bool)
        seen[top_items[:, :k].ravel()] = True
        seen[0] = False
        out[f"coverage@{k}"] = float(seen.sum() / n_items) if n_items else 0.0
        out[f"tail_coverage@{k}"] = float((seen & tail).sum() / n_tail) if n_tail else 0.0
    return out


def _buckets(targets: np.ndarray, popularity: Popularity) -> dict[str, np.ndarray]:
    target_counts = popularity.counts[targets]
    target_head = popularity.is_head[targets]
    return {
        "overall": np.ones(len(targets), dtype=bool),
        "head": target_head,
        "tail": ~target_head,
        "cold": target_counts == 0,
    }


def summarize(
    ranks: np.ndarray,
    targets: np.ndarray,
    top_items: np.ndarray,
    popularity: Popularity,
    repeats: np.ndarray | None = None,
    protocol: str = "novel",
) -> dict:
    """The metrics.json block for one split (docs/CONTRACT.md), plus ``n_targets`` per bucket and the labels.

    The headline buckets count every evaluated user; under ``novel`` a repeat target (``repeats``) is a miss
    there. ``excluding_repeats`` gives overall/head/tail/cold over the other users only, labelled as such.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    repeats = np.zeros(len(targets), dtype=bool) if repeats is None else np.asarray(repeats, dtype=bool)
    target_counts = popularity.counts[targets]
    buckets = _buckets(targets, popularity)
    groups = {}
    for label, low, high in POPULARITY_GROUPS:
        upper = np.iinfo(np.int64).max if high is None else high
        groups[label] = (target_counts >= low) & (target_counts <= upper)
    result: dict = {name: hit_and_ndcg(ranks[mask]) for name, mask in buckets.items()}
    result["groups"] = {name: hit_and_ndcg(ranks[mask]) for name, mask in groups.items()}
    result.update(coverage(top_items, popularity))
    result["n_targets"] = {name: int(mask.sum()) for name, mask in buckets.items()}
    result["n_targets"]["groups"] = {name: int(mask.sum()) for name, mask in groups.items()}
    result["popularity"] = popularity.label
    result["protocol"] = protocol
    result["n_repeat_targets"] = int(repeats.sum())
    novel = ~repeats
    excluded: dict = {name: hit_and_ndcg(ranks[mask & novel]) for name, mask in buckets.items()}
    excluded["n_targets"] = {name: int((mask & novel).sum()) for name, mask in buckets.items()}
    result["excluding_repeats"] = excluded
    return result
