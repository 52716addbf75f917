"""Small prepared datasets and a stand-in embedding store for the trainer tests."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from builders import markov_sequences, write_processed


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
