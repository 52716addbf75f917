"""Helpers: small processed-dataset folders built from real catalogue items (the bundled Scientific sample)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from faerec.data.catalogue import ITEM_SCHEMA

REPO = Path(__file__).resolve().parents[2]
SAMPLE_ITEMS = REPO / "data" / "sample" / "items.jsonl.gz"


def real_items(n: int) -> pl.DataFrame:
    frame = pl.read_ndjson(SAMPLE_ITEMS, schema=ITEM_SCHEMA, n_rows=n)
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int32).alias("item_idx"))


def write_dataset(folder: Path, items: pl.DataFrame, domain: str = "product") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    items.write_parquet(folder / "items.parquet")
    stats = {"dataset_id": folder.name, "items": items.height, "domain": domain}
    (folder / "stats.json").write_text(json.dumps(stats))
    return folder
