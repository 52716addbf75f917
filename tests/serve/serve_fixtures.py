"""Helpers for the recommendation tests (tests/serve/conftest.py builds the world with them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faerec.models import ModelConfig
from faerec.runs.config import TrainConfig
from faerec.text.embed import embed_dataset

HIDDEN = 32
FIELD_CHARS = 100  # short prompts: the MiniLM pass stays a few seconds; the code path is the same


@dataclass
class World:
    root: Path
    catalogue: Path  # a local catalogue folder (interactions.csv, items.jsonl)
    dataset: Path  # its prepared folder, embedded
    cache: Path  # the embedding cache
    runs: dict[str, Path]  # method -> finished run folder


def embed(dataset: Path, cache: Path) -> dict:
    return embed_dataset(dataset, "minilm", pca_dim=HIDDEN, cache_dir=cache, field_chars=FIELD_CHARS, progress=False)


def config(method: str) -> TrainConfig:
    model = ModelConfig.create(backbone="sasrec", method=method, hidden=HIDDEN, layers=1)
    return TrainConfig(model=model, epochs=1, patience=5, batch_size=128, device="cpu")
