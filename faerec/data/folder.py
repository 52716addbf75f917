"""The prepared dataset folder (data/processed/<dataset-id>/): its file names, where it lives, its stats.

    interactions.parquet  user_idx, item_idx, timestamp (sorted)     items.parquet   item_idx, item_id, texts
    users.parquet         user_idx, user_id                          popularity.parquet  training-only counts
    stats.json            counts, filter rounds, fingerprints; written last, so it marks a complete folder
    embeddings/           text embeddings and PCA tables (faerec.text.store)
Every other module asks this one for a path or a fingerprint (docs/CONTRACT.md, "Dataset folder").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from faerec.errors import FaerecError

INTERACTIONS = "interactions.parquet"
ITEMS = "items.parquet"
USERS = "users.parquet"
POPULARITY = "popularity.parquet"
STATS = "stats.json"


def data_root() -> Path:
    """$FAEREC_DATA_DIR, else ./data."""
    return Path(os.environ.get("FAEREC_DATA_DIR", "data"))


def processed_dir(dataset_id: str) -> Path:
    return data_root() / "processed" / dataset_id


def raw_dir(stem: str) -> Path:
    return data_root() / "raw" / stem


def is_complete(folder: str | Path) -> bool:
    return (Path(folder) / STATS).exists()


def read_stats(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / STATS
    if not path.exists():
        raise FaerecError("not a prepared dataset (no stats.json); run `faerec prepare` first", path=Path(folder))
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FaerecError(f"unreadable stats.json ({exc})", path=path) from None


def fingerprints(folder: str | Path) -> dict[str, Any]:
    """What downstream stages (and the flows' cache keys) depend on: the id, the catalogue and interaction
    fingerprints and the filter settings that prepare recorded."""
    stats = read_stats(folder)
    return {"dataset_id": stats.get("dataset_id"), "catalogue": stats.get("catalogue_fingerprint"),
            "interactions": stats.get("interactions_fingerprint"), "filter": stats.get("filter")}
