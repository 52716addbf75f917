"""The in-memory form every source reader produces, before filtering: a raw catalogue.

Readers differ (Amazon dumps, Yelp, MovieLens, a local folder); everything after them is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from faerec.errors import FaerecError

INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Utf8(),
    "item_id": pl.Utf8(),
    "timestamp": pl.Int64(),
}

ITEM_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.Utf8(),
    "title": pl.Utf8(),
    "brand": pl.Utf8(),
    "categories": pl.List(pl.Utf8()),
    "description": pl.Utf8(),
    "price": pl.Utf8(),  # kept as text: sources write "$12.99", "$5 - $10" or 12.99
}


@dataclass
class RawCatalogue:
    """What a source reader returns.

    interactions: user_id, item_id, timestamp (Int64), in the source's original row order (the tie-breaker).
    items: ITEM_SCHEMA columns, one row per item_id (missing fields null).
    domain: the noun prompts use for an item ("beauty item", "product", "business", "movie").
    skipped: documented skips counted by the reader (e.g. {"reviews_without_rating": 3}); go to stats.json.
    """

    source: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    domain: str = "product"
    files: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.interactions = normalise_interactions(self.interactions, self.files[0] if self.files else self.source)
        self.items = normalise_items(self.items, self.files[-1] if self.files else self.source)


def normalise_interactions(frame: pl.DataFrame, where: str | Path) -> pl.DataFrame:
    missing = [c for c in INTERACTION_SCHEMA if c not in frame.columns]
    if missing:
        raise FaerecError(f"missing required column(s) {missing}; found {frame.columns}", path=where)
    return frame.select(pl.col(c).cast(t, strict=True) for c, t in INTERACTION_SCHEMA.items())


def normalise_items(frame: pl.DataFrame, where: str | Path) -> pl.DataFrame:
    """Bring an item table to ITEM_SCHEMA: add absent columns as null, cast, wrap a scalar category."""
    if "item_id" not in frame.columns:
        raise FaerecError(f"missing required column 'item_id'; found {frame.columns}", path=where)
    columns = []
    for name, dtype in ITEM_SCHEMA.items():
        if name not in frame.columns:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        col = pl.col(name)
        current = frame.schema[name]
        if name == "categories":
            if current == pl.Utf8:
                col = pl.when(col.is_null()).then(None).otherwise(pl.concat_list(col))
            elif current == pl.Null:
                col = col.cast(dtype)
            elif isinstance(current, pl.List) and current.inner != pl.Utf8:
                col = col.cast(pl.List(pl.Utf8))
            columns.append(col.alias(name))
            continue
        columns.append(col.cast(dtype, strict=False).alias(name))
    items = frame.select(columns)
    items = items.filter(pl.col("item_id").is_not_null())
    # Several metadata rows for one item: keep the first, as the source listed it.
    return items.unique(subset="item_id", keep="first", maintain_order=True)
