"""Read a processed dataset folder (written by ``faerec prepare``) into arrays the trainer uses.

Files (data/processed/<dataset-id>/):
  interactions.parquet  user_idx int32 (0-based), item_idx int32 (1-based; 0 = padding), timestamp int64,
                        sorted by (user_idx, timestamp, original row order)
  items.parquet         item_idx, item_id, title, brand, categories, description, price
  users.parquet         user_idx, user_id
  popularity.parquet    item_idx, train_count, full_count, is_head (training-only counts, docs/PROTOCOL.md)
  stats.json            counts, filter rounds, fingerprints; written last, so its presence marks completion
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from faerec.data import folder
from faerec.errors import FaerecError


@dataclass
class Dataset:
    """Leave-one-out view of a processed dataset.

    ``items`` holds every user's items in time order, concatenated; user u owns items[offsets[u]:offsets[u+1]].
    For an evaluable user (length >= 3) the last item is the test target, the one before it the validation
    target, and the rest is training. Shorter users train on everything and are not evaluated.
    """

    path: Path
    n_users: int
    n_items: int
    items: np.ndarray  # int64, flat
    offsets: np.ndarray  # int64, n_users + 1
    train_count: np.ndarray  # int64, n_items + 1, indexed by item_idx (index 0 = padding, 0)
    full_count: np.ndarray  # int64, n_items + 1
    is_head: np.ndarray  # bool, n_items + 1 (padding False)
    stats: dict

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        path = Path(path)
        stats_file = path / folder.STATS
        if not stats_file.exists():
            raise FaerecError("not a prepared dataset (no stats.json); run `faerec prepare` first", path=path)
        stats = json.loads(stats_file.read_text())
        inter = pl.read_parquet(path / folder.INTERACTIONS, columns=["user_idx", "item_idx"])
        n_users = int(stats["users"])
        n_items = int(stats["items"])
        user = inter["user_idx"].to_numpy().astype(np.int64)
        offsets = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(user, minlength=n_users), out=offsets[1:])
        pop = pl.read_parquet(path / folder.POPULARITY).sort("item_idx")
        train_count = np.zeros(n_items + 1, dtype=np.int64)
        full_count = np.zeros(n_items + 1, dtype=np.int64)
        is_head = np.zeros(n_items + 1, dtype=bool)
        idx = pop["item_idx"].to_numpy()
        train_count[idx] = pop["train_count"].to_numpy()
        full_count[idx] = pop["full_count"].to_numpy()
        is_head[idx] = pop["is_head"].to_numpy()
        return cls(path, n_users, n_items, inter["item_idx"].to_numpy().astype(np.int64), offsets,
                   train_count, full_count, is_head, stats)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @cached_property
    def evaluable(self) -> np.ndarray:
        """Boolean mask over users with at least 3 interactions (train, validation and test targets)."""
        return self.lengths >= 3

    @cached_property
    def train_lengths(self) -> np.ndarray:
        """Length of each user's training part (all of it for users too short to evaluate)."""
        return np.where(self.evaluable, self.lengths - 2, self.lengths)

    @property
    def name(self) -> str:
        return str(self.stats.get("dataset_id", self.path.name))
