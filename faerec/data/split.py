"""Leave-one-out positions and training-only popularity (PROTOCOL.md), computed on the sorted log."""

from __future__ import annotations

import math

import polars as pl

HEAD_FRACTION = 0.2  # Pareto split of the paper, section 3


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
    n_head = math.ceil(HEAD_FRACTION * n_items)
    ranked = table.sort(["train_count", "item_idx"], descending=[True, False]).with_row_index("rank")
    return (
        ranked.with_columns((pl.col("rank") < n_head).alias("is_head"))
        .drop("rank").sort("item_idx")
    )
