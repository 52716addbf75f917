"""The item side of a processed dataset folder: items.parquet (aligned to item_idx) and the prompt domain."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from faerec.data import folder as dataset_folder
from faerec.errors import FaerecError

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = "product"


@dataclass
class ItemCatalogue:
    """Every row of items.parquet: the trained items (item_idx 1..n_trained) and after them the candidate-only
    items (n_trained + 1 .. n_items), which ``faerec prepare`` keeps for recommendation (never trained)."""

    path: Path  # the dataset folder
    items: pl.DataFrame  # sorted by item_idx, which runs 1..n
    domain: str
    stats: dict
    n_trained: int = -1  # -1: all rows (a folder without stats.json)

    def __post_init__(self) -> None:
        if self.n_trained < 0:
            self.n_trained = self.items.height

    @property
    def n_items(self) -> int:
        """All rows, candidates included."""
        return self.items.height

    @property
    def n_candidates(self) -> int:
        return self.items.height - self.n_trained


def read_items(dataset_dir: str | Path, domain: str | None = None) -> ItemCatalogue:
    folder = Path(dataset_dir)
    items_file = folder / dataset_folder.ITEMS
    if not items_file.is_file():
        raise FaerecError("no items.parquet; run `faerec prepare` first", path=folder)
    stats: dict = {}
    stats_file = folder / dataset_folder.STATS
    if stats_file.is_file():
        try:
            stats = json.loads(stats_file.read_text())
        except ValueError as exc:
            raise FaerecError(f"invalid JSON ({exc})", path=stats_file) from None
    try:
        items = pl.read_parquet(items_file)
    except Exception as exc:
        raise FaerecError(f"unreadable Parquet file ({exc})", path=items_file) from None
    if "item_idx" not in items.columns:
        raise FaerecError(f"missing column 'item_idx'; found {items.columns}", path=items_file)
    items = items.with_row_index("_row").sort("item_idx")
    idx = items.get_column("item_idx")
    expected = pl.int_range(1, items.height + 1, eager=True)
    bad = items.filter(idx.is_null() | (idx.cast(pl.Int64) != expected))
    if bad.height:
        row = int(bad.get_column("_row")[0])
        raise FaerecError(
            f"item_idx must be unique and run 1..{items.height}; row {row + 1} has {bad.get_column('item_idx')[0]}",
            path=items_file,
        )
    n_trained = items.height
    if "items" in stats:
        n_trained, n_candidates = int(stats["items"]), int(stats.get("candidate_items", 0))
        if n_trained + n_candidates != items.height:
            extra = f" and {n_candidates} candidate items" if n_candidates else ""
            raise FaerecError(f"stats.json says {n_trained} items{extra}, items.parquet has {items.height}",
                              path=stats_file)
    if domain is None:
        domain = stats.get("domain")
        if not domain:
            log.warning("%s has no domain; prompts call items '%s'", stats_file, DEFAULT_DOMAIN)
            domain = DEFAULT_DOMAIN
    return ItemCatalogue(folder, items.drop("_row"), str(domain), stats, n_trained)
