"""``faerec prepare``: a source -> data/processed/<dataset-id>/ (docs/ARCHITECTURE.md, step 1).

raw catalogue -> drop exact duplicates -> iterative k-core -> 1-based item / 0-based user ids -> sort by
(user, time, original row) -> leave-one-out split -> training-only popularity -> atomic writes, stats.json last.

Candidate-only items (docs/CONTRACT.md, "Dataset folder"): catalogue items that have text but are not trained
are appended to items.parquet after the trained items (item_idx n_items + 1 .. n_items + C, ``candidate``
true). They change nothing the trainer or the evaluator reads (interactions, users, popularity, n_items), so
a run keeps its metrics; methods that can represent an item from its text recommend them (faerec.serve).
``candidates`` chooses which: "new" (default) the catalogue items nobody interacted with, "all" also those the
k-core removed (on Amazon's full review files that can be 20x the trained catalogue, hence not the default),
"none" neither. ``new_items`` > 0 holds out a seeded share of the k-core's items for the new-item protocol
(``hold_out_items``); the held-out items are always candidates.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from faerec import __version__
from faerec.data import folder
from faerec.data.catalogue import RawCatalogue
from faerec.data.kcore import iterative_kcore, require_survivors
from faerec.data.split import HEAD_FRACTION, popularity, with_split
from faerec.errors import FaerecError
from faerec.hashing import frame_digest
from faerec.io import write_json, write_parquet

CANDIDATE_MODES = ("new", "all", "none")
DEFAULT_NEW_ITEMS_SEED = 2024
TEXT_COLUMNS = ("title", "brand", "description")  # and a non-empty categories list


def dataset_id(stem: str, min_user: int, min_item: int, new_items: float = 0.0,
               new_items_seed: int = DEFAULT_NEW_ITEMS_SEED) -> str:
    """``<stem>-u<min-user>i<min-item>``, plus ``-new<share>s<seed>`` for a new-item hold-out."""
    base = f"{stem}-u{min_user}i{min_item}"
    return f"{base}-new{new_items:g}s{new_items_seed}" if new_items > 0 else base


def prepare(source: str, out: str | Path | None = None, *, min_user: int = 5, min_item: int = 5,
            raw_dir: str | Path | None = None, progress: bool = True, candidates: str = "new",
            new_items: float = 0.0, new_items_seed: int = DEFAULT_NEW_ITEMS_SEED) -> dict:
    """Prepare one source; returns the docs/CONTRACT.md summary plus the output path and fingerprints."""
    from faerec.data.sources import resolve_source

    started = time.perf_counter()
    _check_candidate_options(candidates, new_items)
    src = resolve_source(source)
    stem = src.dataset_stem()
    raw = Path(raw_dir) if raw_dir is not None else folder.raw_dir(stem)
    catalogue = src.load(raw, progress=progress)
    ds_id = dataset_id(stem, min_user, min_item, new_items, new_items_seed)
    out_dir = Path(out) if out is not None else folder.processed_dir(ds_id)
    stats = build(catalogue, out_dir, ds_id, min_user, min_item, candidates=candidates, new_items=new_items,
                  new_items_seed=new_items_seed)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    write_json(out_dir / folder.STATS, stats)
    summary = {
        "users": stats["users"], "items": stats["items"], "interactions": stats["interactions"],
        "seconds": stats["seconds"], "path": str(out_dir), "dataset_id": ds_id,
        "fingerprint": stats["catalogue_fingerprint"], "candidate_items": stats["candidate_items"],
    }
    if "new_items" in stats:
        summary["new_items"] = stats["new_items"]
    return summary


def _check_candidate_options(candidates: str, new_items: float) -> None:
    if candidates not in CANDIDATE_MODES:
        raise FaerecError(f"candidates must be one of {list(CANDIDATE_MODES)}, got {candidates!r}")
    if not 0.0 <= new_items < 1.0:
        raise FaerecError(f"--new-items must be a share in [0, 1), got {new_items}")


def build(catalogue: RawCatalogue, out_dir: Path, ds_id: str, min_user: int, min_item: int, *,
          candidates: str = "new", new_items: float = 0.0, new_items_seed: int = DEFAULT_NEW_ITEMS_SEED) -> dict:
    """Filter, remap, split and write everything but stats.json (returned, written last by the caller).

    Every check comes before the first write: a run that fails on its input creates no folder and leaves an
    existing one (from an earlier good run) untouched.
    """
    _check_candidate_options(candidates, new_items)
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
    meta = catalogue.items
    with_text = meta.filter(has_text())["item_id"]

    users = _first_appearance(log, "user_id", "user_idx", start=0)
    held_out_stats: dict | None = None
    held = pl.Series("item_id", [], dtype=pl.Utf8)
    if new_items > 0:
        log, held, held_out_stats = hold_out_items(log, users, with_text, new_items, new_items_seed)
    trained_log = log.filter(~pl.col("item_id").is_in(held.implode())) if held.len() else log
    items = _first_appearance(trained_log, "item_id", "item_idx", start=1)
    n_trained = items.height
    if held.len():  # the held-out items follow the trained ones, in order of first appearance
        items = pl.concat([items, pl.DataFrame({"item_id": held}).with_columns(
            pl.int_range(n_trained + 1, n_trained + 1 + held.len(), dtype=pl.Int32).alias("item_idx"))])
    log = (
        log.join(users, on="user_id").join(items, on="item_id")
        .sort(["user_idx", "timestamp", "row"])
        .select("user_idx", "item_idx", "timestamp")
    )
    log = with_split(log)
    pop = popularity(log, n_trained)

    item_table = (items.join(meta, on="item_id", how="left").sort("item_idx")
                  .with_columns((pl.col("item_idx") > n_trained).alias("candidate")))
    trained_table = item_table.head(n_trained)
    has_meta = items["item_id"].head(n_trained).is_in(meta["item_id"].implode())
    raw_item_ids = catalogue.interactions["item_id"].unique()
    meta_unused = int((~meta["item_id"].is_in(raw_item_ids.implode())).sum())
    meta_filtered = int((meta["item_id"].is_in(raw_item_ids.implode())
                         & ~meta["item_id"].is_in(items["item_id"].implode())).sum())
    extra = _extra_candidates(meta, with_text, raw_item_ids, items["item_id"], candidates)
    extra_never_interacted = int((~extra["item_id"].is_in(raw_item_ids.implode())).sum())
    first = item_table.height + 1
    extra = extra.with_columns(pl.int_range(first, first + extra.height, dtype=pl.Int32).alias("item_idx"),
                               pl.lit(True).alias("candidate"))
    item_table = pl.concat([item_table, extra.select(item_table.columns)])
    n_candidates = item_table.height - n_trained

    (out_dir / folder.STATS).unlink(missing_ok=True)  # a half-rebuilt folder must not look complete
    write_parquet(out_dir / folder.INTERACTIONS, log.drop("split"))
    write_parquet(out_dir / folder.ITEMS, item_table)
    write_parquet(out_dir / folder.USERS, users.sort("user_idx").select("user_idx", "user_id"))
    write_parquet(out_dir / folder.POPULARITY, pop)

    n_users, n_items, n_inter = users.height, n_trained, log.height
    lengths = log.group_by("user_idx").len()["len"]
    if held_out_stats is not None:  # a user may have lost every interaction: count them as length 0
        lengths = users.select("user_idx").join(log.group_by("user_idx").len(), on="user_idx", how="left")[
            "len"].fill_null(0)
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
        "catalogue_fingerprint": catalogue_fingerprint(trained_table),
        "interactions_fingerprint": _frame_fingerprint(log.select("user_idx", "item_idx", "timestamp")),
        "candidate_items": n_candidates,
        "candidates": {"mode": candidates, "held_out": held.len(), "never_interacted": extra_never_interacted,
                       "removed_by_kcore": extra.height - extra_never_interacted},
        "candidates_fingerprint": catalogue_fingerprint(item_table.tail(n_candidates)),
        **({"new_items": held_out_stats} if held_out_stats is not None else {}),
        "faerec_version": __version__,
    }


def has_text() -> pl.Expr:
    """An item has text when its title, brand or description is non-blank or it has a non-empty category."""
    blank = [pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in TEXT_COLUMNS]
    no_category = pl.col("categories").is_null() | (pl.col("categories").list.len() == 0)
    return ~pl.all_horizontal(*blank, no_category)


def _extra_candidates(meta: pl.DataFrame, with_text: pl.Series, raw_item_ids: pl.Series, kept_ids: pl.Series,
                      mode: str) -> pl.DataFrame:
    """Catalogue items with text that are neither trained nor held out, in metadata order, per ``mode``."""
    if mode == "none":
        return meta.head(0)
    rows = meta.filter(pl.col("item_id").is_in(with_text.implode()) & ~pl.col("item_id").is_in(kept_ids.implode()))
    if mode == "new":
        rows = rows.filter(~pl.col("item_id").is_in(raw_item_ids.implode()))
    return rows


def hold_out_items(log: pl.DataFrame, users: pl.DataFrame, with_text: pl.Series, share: float,
                   seed: int) -> tuple[pl.DataFrame, pl.Series, dict]:
    """The new-item protocol: hold out a seeded ``share`` of the k-core's items (drawn among those with text).

    Every training and validation interaction with a held-out item is removed; its test-target interactions
    (a user's last one) stay, so those users are ranked on an item no model saw. The split is then the usual
    one on what is left; a user left with fewer than 3 interactions would train on everything, its held-out
    test item included, so that interaction is dropped too. Returns the reduced k-core log (still keyed by
    user_id / item_id), the held-out item ids (in order of first appearance), and the counts for stats.json.
    """
    first_seen = log.group_by("item_id").agg(pl.col("row").min()).sort("row")["item_id"]
    eligible = first_seen.filter(first_seen.is_in(with_text.implode()))
    n_hold = min(eligible.len(), max(1, round(share * first_seen.len())))
    if n_hold >= first_seen.len():
        raise FaerecError(f"--new-items {share} would hold out every item of the k-core; use a smaller share")
    rng = np.random.default_rng(seed)
    held = eligible.gather(np.sort(rng.choice(eligible.len(), size=n_hold, replace=False)))
    is_held = pl.col("item_id").is_in(held.implode())
    ordered = log.join(users, on="user_id").sort(["user_idx", "timestamp", "row"])
    ordered = with_split(ordered)
    kept = ordered.filter(~is_held | (pl.col("split") == "test"))
    kept = kept.with_columns(pl.len().over("user_idx").alias("_n"))
    unevaluable = is_held & (pl.col("_n") < 3)
    n_dropped_targets = int(kept.select(unevaluable.sum()).item())
    kept = kept.filter(~unevaluable)
    n_targets = int(kept.select(is_held.sum()).item())
    stats = {"share": share, "seed": seed, "held_out_items": n_hold, "eligible_items": eligible.len(),
             "test_targets": n_targets, "interactions_removed": ordered.height - kept.height,
             "test_targets_dropped_short_users": n_dropped_targets,
             "users_without_interactions": users.height - kept["user_idx"].n_unique()}
    return kept.drop("_n", "split", "user_idx").sort("row"), held, stats


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
