"""The one dataset builder for tests: hand-made sequences as an in-memory Dataset or a prepared folder, and a
tiny real catalogue cut from the bundled sample.

Importable from every test folder (pytest puts tests/ on sys.path for tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from faerec.data import folder as dataset_folder
from faerec.data.dataset import Dataset
from faerec.data.split import popularity, with_split


def dataset_from_sequences(sequences: list[list[int]], n_items: int, head: set[int] | None = None) -> Dataset:
    """A Dataset whose user u has ``sequences[u]``; training counts exclude each user's last two items."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = np.array([i for s in sequences for i in s], dtype=np.int64)
    train_count = np.zeros(n_items + 1, dtype=np.int64)
    full_count = np.zeros(n_items + 1, dtype=np.int64)
    for seq in sequences:
        train = seq[:-2] if len(seq) >= 3 else seq
        np.add.at(train_count, np.array(train, dtype=np.int64), 1)
        np.add.at(full_count, np.array(seq, dtype=np.int64), 1)
    is_head = np.zeros(n_items + 1, dtype=bool)
    for item in head or ():
        is_head[item] = True
    stats = {"users": len(sequences), "items": n_items, "dataset_id": "handmade"}
    return Dataset(Path("handmade"), len(sequences), n_items, items, offsets, train_count, full_count, is_head,
                   stats)


def write_processed(folder: Path, sequences: list[list[int]], n_items: int, dataset_id: str = "tiny") -> Path:
    """A processed dataset folder in the format `faerec prepare` writes (the files Dataset.load reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    users = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences]).astype(np.int32)
    items = np.concatenate([np.asarray(s) for s in sequences]).astype(np.int32)
    timestamps = np.concatenate([np.arange(len(s)) for s in sequences]).astype(np.int64)
    log = pl.DataFrame({"user_idx": users, "item_idx": items, "timestamp": timestamps})
    log.write_parquet(folder / dataset_folder.INTERACTIONS)
    popularity(with_split(log), n_items).write_parquet(folder / dataset_folder.POPULARITY)
    stats = {"users": len(sequences), "items": n_items, "interactions": len(items), "dataset_id": dataset_id}
    (folder / dataset_folder.STATS).write_text(json.dumps(stats))
    return folder


def markov_sequences(n_users: int, n_items: int, seed: int, length: tuple[int, int] = (4, 16)) -> list[list[int]]:
    """Sequences with learnable structure: the next item is usually item + 1 (mod n), sometimes random."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_users):
        n = int(rng.integers(*length))
        seq = [int(rng.integers(1, n_items + 1))]
        for _ in range(n - 1):
            nxt = seq[-1] % n_items + 1 if rng.random() < 0.8 else int(rng.integers(1, n_items + 1))
            seq.append(nxt)
        sequences.append(seq)
    return sequences


TOP_USERS = 500


def write_tiny_catalogue(sample: Path, out: Path, top_users: int = TOP_USERS) -> Path:
    """The ``top_users`` most active users of a catalogue folder and the items they touched."""
    interactions = pl.read_csv(sample / "interactions.csv.gz")
    users = (interactions.group_by("user_id").len()
             .sort(["len", "user_id"], descending=[True, False]).head(top_users)["user_id"])
    subset = interactions.filter(pl.col("user_id").is_in(users.implode()))
    items = pl.read_ndjson(sample / "items.jsonl.gz").filter(pl.col("item_id").is_in(subset["item_id"].implode()))
    out.mkdir(parents=True, exist_ok=True)
    subset.write_csv(out / "interactions.csv")
    items.write_ndjson(out / "items.jsonl")
    return out
