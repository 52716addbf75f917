"""Small hand-made datasets for the evaluator tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faerec.data.dataset import Dataset


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


@pytest.fixture
def make_dataset():
    return dataset_from_sequences


@pytest.fixture(autouse=True)
def _single_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py says why)."""
