"""Small prepared datasets and a stand-in embedding store for the trainer tests."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from faerec.data.split import popularity, with_split


def write_processed(folder: Path, sequences: list[list[int]], n_items: int, dataset_id: str = "tiny") -> Path:
    """A processed dataset folder in the format `faerec prepare` writes (the files Dataset.load reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    users = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences]).astype(np.int32)
    items = np.concatenate([np.asarray(s) for s in sequences]).astype(np.int32)
    timestamps = np.concatenate([np.arange(len(s)) for s in sequences]).astype(np.int64)
    log = pl.DataFrame({"user_idx": users, "item_idx": items, "timestamp": timestamps})
    log.write_parquet(folder / "interactions.parquet")
    popularity(with_split(log), n_items).write_parquet(folder / "popularity.parquet")
    stats = {"users": len(sequences), "items": n_items, "interactions": len(items), "dataset_id": dataset_id}
    (folder / "stats.json").write_text(json.dumps(stats))
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


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_processed(tmp_path / "tiny", markov_sequences(160, 40, seed=7), n_items=40)


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch):
    """Install a stand-in for faerec.text.store that serves random (seeded) LLM tables and PCA."""
    calls = []

    def load_embeddings(dataset_dir, encoder="minilm"):
        n = json.loads((Path(dataset_dir) / "stats.json").read_text())["items"]
        calls.append(("embeddings", encoder))
        table = np.random.default_rng(11).normal(size=(n + 1, 24)).astype(np.float32)
        table /= np.linalg.norm(table, axis=1, keepdims=True)  # unit rows, like sentence-transformer output
        table[0] = 0
        return table, f"fake-{encoder}"

    def load_pca(dataset_dir, dim=128, encoder="minilm"):
        table, _ = load_embeddings(dataset_dir, encoder)
        calls.append(("pca", dim))
        centred = table[1:] - table[1:].mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        out = np.zeros((len(table), dim), dtype=np.float32)
        out[1:, : min(dim, vt.shape[0])] = centred @ vt[:dim].T
        return out

    module = types.ModuleType("faerec.text.store")
    module.load_embeddings = load_embeddings
    module.load_pca = load_pca
    monkeypatch.setitem(sys.modules, "faerec.text.store", module)
    return calls


@pytest.fixture
def make_processed(tmp_path: Path):
    """make_processed(sequences, n_items) -> a prepared folder under tmp_path."""
    counter = iter(range(1000))

    def make(sequences: list[list[int]], n_items: int) -> Path:
        return write_processed(tmp_path / f"data{next(counter)}", sequences, n_items)

    return make


@pytest.fixture
def markov():
    return markov_sequences


@pytest.fixture(autouse=True)
def _single_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py says why)."""
