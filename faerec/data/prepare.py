"""``faerec prepare``: a source -> data/processed/<dataset-id>/ (docs/ARCHITECTURE.md, step 1).

raw catalogue -> drop exact duplicates -> iterative k-core -> 1-based item / 0-based user ids -> sort by
(user, time, original row) -> leave-one-out split -> training-only popularity -> atomic writes, stats.json last.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import polars as pl

from faerec import __version__
from faerec.data import folder
from faerec.data.catalogue import RawCatalogue
from faerec.data.kcore import iterative_kcore, require_survivors
from faerec.data.split import HEAD_FRACTION, popularity, with_split
from faerec.errors import FaerecError
from faerec.hashing import frame_digest
from faerec.io import write_json, write_parquet


def dataset_id(stem: str, min_user: int, min_item: int) -> str:
    return f"{stem}-u{min_user}i{min_item}"


def prepare(source: str, out: str | Path | None = None, *, min_user: int = 5, min_item: int = 5,
            raw_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Prepare one source; returns the docs/CONTRACT.md summary plus the output path and fingerprints."""
    from faerec.data.sources import resolve_source

    started = time.perf_counter()
    src = resolve_source(source)
    stem = src.dataset_stem()
    raw = Path(raw_dir) if raw_dir is not None else folder.raw_dir(stem)
    catalogue = src.load(raw, progress=progress)
    ds_id = dataset_id(stem, min_user, min_item)
    out_dir = Path(out) if out is not None else folder.processed_dir(ds_id)
    stats = build(catalogue, out_dir, ds_id, min_user, min_item)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    write_json(out_dir / folder.STATS, stats)
    return {
        "users": stats["users"], "items": stats["items"], "interactions": stats["interactions"],
        "seconds": stats["seconds"], "path": str(out_dir), "dataset_id": ds_id,
        "fingerprint": stats["catalogue_fingerprint"],
    }


def build(catalogue: RawCatalogue, out_dir: Path, ds_id: str, min_user: int, min_item: int) -> dict:
    """Filter, remap, split and write everything but stats.json (returned, written last by the caller).

    Every check comes before the first write: a run that fails on its input creates no folder and leaves an
    existing one (from an earlier good run) untouched.
    """
    log = catalogue.interactions.with_row_index("row")
    if log.height == 0:  # local catalogues say so on reading; this covers every other source
        where = catalogue.files[0] if catalogue.files else None
        raise FaerecError(f"no interactions read from {catalogue.source}", path=where)
    raw_counts = {"users": log["user_id"].n_unique(), "items": log["item_id"].n_unique(),
                  "interactions": log.height}
    log = log.unique(subset=["user_id", "item_id", "timestamp"], keep="first", maintain_order=True)
    duplicates_dropped = raw_counts["interactions"] - log.height
    repeated_pairs = log.height - log.select(pl.struct("user_id", "item_id").n_unique()).item()

    log, rounds = iterative_kcore(log, min_user, min_item)
    require_survivors(rounds, min_user, min_item)

    users = _first_appearance(log, "user_id", "user_idx", start=0)
    items = _first_appearance(log, "item_id", "item_idx", start=1)
    log = (
        log.join(users, on="user_id").join(items, on="item_id")
        .sort(["user_idx", "timestamp", "row"])
        .select("user_idx", "item_idx", "timestamp")
    )
    log = with_split(log)
    pop = popularity(log, items.height)

    meta = catalogue.items
    item_table = items.join(meta, on="item_id", how="left").sort("item_idx")
    has_meta = items["item_id"].is_in(meta["item_id"].implode())
    raw_item_ids = catalogue.interactions["item_id"].unique()
    meta_unused = int((~meta["item_id"].is_in(raw_item_ids.implode())).sum())
    meta_filtered = int((meta["item_id"].is_in(raw_item_ids.implode())
                         & ~meta["item_id"].is_in(items["item_id"].implode())).sum())

    (out_dir / folder.STATS).unlink(missing_ok=True)  # a half-rebuilt folder must not look complete
    write_parquet(out_dir / folder.INTERACTIONS, log.drop("split"))
    write_parquet(out_dir / folder.ITEMS, item_table)
    write_parquet(out_dir / folder.USERS, users.sort("user_idx").select("user_idx", "user_id"))
    write_parquet(out_dir / folder.POPULARITY, pop)

    n_users, n_items, n_inter = users.height, items.height, log.height
    lengths = log.group_by("user_idx").len()["len"]
    split_counts = dict(log.group_by("split").len().iter_rows())
    n_head = int(pop["is_head"].sum())
    return {
        "dataset_id": ds_id,
        "source": catalogue.source,
        "domain": catalogue.domain,
        "files": catalogue.files,
        "filter": {"min_user_interactions": min_user, "min_item_interactions": min_item, "iterative": True},
        "raw": raw_counts,
        "duplicates_dropped": duplicates_dropped,
        "repeated_user_item_pairs_kept": repeated_pairs,
        "filter_rounds": [asdict(r) for r in rounds],
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "sparsity": 1.0 - n_inter / (n_users * n_items) if n_users and n_items else None,
        "avg_sequence_length": float(lengths.mean()) if n_users else 0.0,
        "max_sequence_length": int(lengths.max()) if n_users else 0,
        "users_not_evaluable": int((lengths < 3).sum()) if n_users else 0,
        "split": {k: int(split_counts.get(k, 0)) for k in ("train", "valid", "test")},
        "head_fraction": HEAD_FRACTION,
        "head_items": n_head,
        "tail_items": n_items - n_head,
        "head_min_train_count": int(pop.filter(pl.col("is_head"))["train_count"].min()) if n_head else None,
        "items_without_train_interactions": int((pop["train_count"] == 0).sum()),
        "items_without_metadata": int((~has_meta).sum()),
        "metadata_without_interactions": meta_unused,
        "metadata_of_filtered_items": meta_filtered,
        "reader_skipped": catalogue.skipped,
        "catalogue_fingerprint": catalogue_fingerprint(item_table),
        "interactions_fingerprint": _frame_fingerprint(log.select("user_idx", "item_idx", "timestamp")),
        "faerec_version": __version__,
    }


def catalogue_fingerprint(item_table: pl.DataFrame) -> str:
    """A content hash of the item texts, independent of row order (the re-embedding flow compares it)."""
    text = item_table.select(
        "item_id", "title", "brand", pl.col("categories").list.join("\x1f"), "description", "price"
    ).sort("item_id")
    return _frame_fingerprint(text)


def _frame_fingerprint(frame: pl.DataFrame) -> str:
    return frame_digest(frame)


def _first_appearance(log: pl.DataFrame, column: str, index: str, start: int) -> pl.DataFrame:
    """Number ids in order of first appearance in the source (stable, hash-seed free)."""
    firsts = log.group_by(column).agg(pl.col("row").min()).sort("row")
    return firsts.select(column, pl.int_range(start, start + firsts.height, dtype=pl.Int32).alias(index))
