"""Make a local catalogue with repeat consumption from one without (the issue-9 check of docs/PROTOCOL.md).

For a seeded share of users one earlier item of theirs is consumed again, either as their new last
interaction (a repeat *test* target) or just before their last one (a repeat *validation* target). The
items file is copied unchanged. Usage:

    python scripts/repeat_catalogue.py data/sample /tmp/sample-repeats --share 0.07
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import polars as pl


def add_repeats(log: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """``log`` (user_id, item_id, timestamp) plus one repeat for ``2 * share`` of its users."""
    rng = np.random.default_rng(seed)
    log = log.with_columns((pl.col("timestamp").cast(pl.Int64) * 10).alias("timestamp"))
    users = log["user_id"].unique(maintain_order=True).to_numpy()
    chosen = rng.choice(len(users), size=int(round(2 * share * len(users))), replace=False)
    as_test = set(users[chosen[: len(chosen) // 2]].tolist())
    last = log.group_by("user_id", maintain_order=True).agg(
        pl.col("item_id").alias("items"), pl.col("timestamp").max().alias("last"))
    last = last.filter(pl.col("user_id").is_in(users[chosen].tolist()))
    rows = []
    for user, items, last_ts in last.iter_rows():  # one row per chosen user, not per interaction
        if user in as_test:
            rows.append((user, items[int(rng.integers(len(items)))], last_ts + 10))
        else:  # before the last interaction: the repeat becomes the validation target
            rows.append((user, items[int(rng.integers(len(items) - 1))], last_ts - 5))
    extra = pl.DataFrame(rows, schema={"user_id": log["user_id"].dtype, "item_id": log["item_id"].dtype,
                                       "timestamp": pl.Int64}, orient="row")
    return pl.concat([log, extra]).sort(["user_id", "timestamp"], maintain_order=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a local catalogue folder (interactions.csv[.gz] + items)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--share", type=float, default=0.07, help="share of users with a repeat test target "
                        "(the same share again gets a repeat validation target)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    source = next(args.source.glob("interactions.csv*"))
    log = pl.read_csv(source, schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
    args.out.mkdir(parents=True, exist_ok=True)
    add_repeats(log, args.share, args.seed).write_csv(args.out / "interactions.csv")
    for extra in args.source.glob("items.*"):
        shutil.copy(extra, args.out / extra.name)
    if (args.source / "source.json").exists():
        shutil.copy(args.source / "source.json", args.out / "source.json")
    print(f"{args.out}: {log.height} interactions + repeats")


if __name__ == "__main__":
    main()
