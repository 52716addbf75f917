"""Helpers for the recommendation tests (tests/serve/conftest.py builds the world with them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from faerec.models import ModelConfig
from faerec.runs.config import TrainConfig
from faerec.text.embed import embed_dataset

TOP_USERS = 500
HIDDEN = 32
FIELD_CHARS = 100  # short prompts: the MiniLM pass stays a few seconds; the code path is the same


@dataclass
class World:
    root: Path
    catalogue: Path  # a local catalogue folder (interactions.csv, items.jsonl)
    dataset: Path  # its prepared folder, embedded
    cache: Path  # the embedding cache
    runs: dict[str, Path]  # method -> finished run folder


def write_catalogue(sample: Path, out: Path, top_users: int = TOP_USERS) -> Path:
    interactions = pl.read_csv(sample / "interactions.csv.gz")
    users = (interactions.group_by("user_id").len()
             .sort(["len", "user_id"], descending=[True, False]).head(top_users)["user_id"])
    subset = interactions.filter(pl.col("user_id").is_in(users.implode()))
    items = pl.read_ndjson(sample / "items.jsonl.gz").filter(pl.col("item_id").is_in(subset["item_id"].implode()))
    out.mkdir(parents=True, exist_ok=True)
    subset.write_csv(out / "interactions.csv")
    items.write_ndjson(out / "items.jsonl")
    return out


def embed(dataset: Path, cache: Path) -> dict:
    return embed_dataset(dataset, "minilm", pca_dim=HIDDEN, cache_dir=cache, field_chars=FIELD_CHARS, progress=False)


def config(method: str) -> TrainConfig:
    model = ModelConfig.create(backbone="sasrec", method=method, hidden=HIDDEN, layers=1)
    return TrainConfig(model=model, epochs=1, patience=5, batch_size=128, device="cpu")
