"""Leave-one-out positions and training-only popularity (docs/PROTOCOL.md), computed on the sorted log.

The one home of the popularity rules: the head split (top 20 % of items by count, ties by item_idx) and the
popularity groups of the paper's figure 4; prepare, the evaluator and the reports all read them here.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

HEAD_FRACTION = 0.2  # Pareto split of the paper, section 3
# (label, lowest training count, highest training count or None for open-ended)
POPULARITY_GROUPS: tuple[tuple[str, int, int | None], ...] = (
    ("1-4", 1, 4),
    ("5-9", 5, 9),
    ("10-19", 10, 19),
    ("20-49", 20, 49),
    ("50+", 50, None),
)
GROUP_LABELS: tuple[str, ...] = tuple(label for label, _, _ in POPULARITY_GROUPS)


def head_by_share(counts: np.ndarray, share: float = HEAD_FRACTION) -> np.ndarray:
    """Head mask [n_items + 1] from counts [n_items + 1] (index 0 = padding, never head): the top ``share`` of
    real items by count (rounded up), ties broken by the smaller item_idx."""
    n_items = len(counts) - 1
    n_head = math.ceil(share * n_items)
    order = np.lexsort((np.arange(1, n_items + 1), -np.asarray(counts)[1:]))  # count desc, then item_idx asc
    is_head = np.zeros(n_items + 1, dtype=bool)
    is_head[order[:n_head] + 1] = True
    return is_head


def group_of(counts: np.ndarray) -> np.ndarray:
    """Index into POPULARITY_GROUPS per count; -1 for 0 (cold: no group)."""
    counts = np.asarray(counts)
    out = np.full(counts.shape, -1, dtype=np.int64)
    for i, (_, low, high) in enumerate(POPULARITY_GROUPS):
        out[(counts >= low) & (counts <= (np.iinfo(np.int64).max if high is None else high))] = i
    return out


def with_split(interactions: pl.DataFrame) -> pl.DataFrame:
    """Add ``split``: "train" / "valid" / "test" to a log sorted by (user_idx, timestamp, row order).

    The last interaction is the test target, the second-to-last the validation target. Users with fewer than
    3 interactions cannot be evaluated: all their interactions are training.
    """
    position = pl.int_range(pl.len()).over("user_idx")
    length = pl.len().over("user_idx")
    split = (
        pl.when(length < 3).then(pl.lit("train"))
        .when(position == length - 1).then(pl.lit("test"))
        .when(position == length - 2).then(pl.lit("valid"))
        .otherwise(pl.lit("train"))
    )
    return interactions.with_columns(split.alias("split"))


def popularity(split_log: pl.DataFrame, n_items: int) -> pl.DataFrame:
    """Per item: training count (head/tail and grouping use it), full-sequence count, and the head flag.

    Head = the top 20 % of items by training count, ties broken by item_idx so the split is deterministic.
    Items never seen in training have train_count 0 (their test targets form the "cold" bucket).
    """
    all_items = pl.DataFrame({"item_idx": pl.int_range(1, n_items + 1, eager=True, dtype=pl.Int32)})
    train = split_log.filter(pl.col("split") == "train").group_by("item_idx").agg(pl.len().alias("train_count"))
    full = split_log.group_by("item_idx").agg(pl.len().alias("full_count"))
    table = (
        all_items.join(train, on="item_idx", how="left").join(full, on="item_idx", how="left")
        .with_columns(pl.col("train_count", "full_count").fill_null(0).cast(pl.Int64))
    )
    table = table.sort("item_idx")
    counts = np.concatenate([[0], table["train_count"].to_numpy()])
    return table.with_columns(pl.Series("is_head", head_by_share(counts)[1:]))
