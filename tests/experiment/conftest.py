"""Fixtures for the experiment tests: a tiny prepared dataset, isolated runs / data folders, a fake text store.

The dataset and the store are those of tests/train/conftest.py (same builder, same seeded random LLM table),
so a FAERec run trains in about a second without an encoder.
"""

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
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("FAEREC_RUNS_DIR", str(root))
    monkeypatch.setenv("FAEREC_DATA_DIR", str(tmp_path / "data"))
    return root


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch):
    """faerec.text.store serving a seeded random LLM table and its PCA (as tests/train/conftest.py)."""

    def load_embeddings(dataset_dir, encoder="minilm"):
        n = json.loads((Path(dataset_dir) / "stats.json").read_text())["items"]
        table = np.random.default_rng(11).normal(size=(n + 1, 24)).astype(np.float32)
        table /= np.linalg.norm(table, axis=1, keepdims=True)
        table[0] = 0
        return table, f"fake-{encoder}"

    def load_pca(dataset_dir, dim=128, encoder="minilm"):
        table, _ = load_embeddings(dataset_dir, encoder)
        centred = table[1:] - table[1:].mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        out = np.zeros((len(table), dim), dtype=np.float32)
        out[1:, : min(dim, vt.shape[0])] = centred @ vt[:dim].T
        return out

    module = types.ModuleType("faerec.text.store")
    module.load_embeddings = load_embeddings
    module.load_pca = load_pca
    monkeypatch.setitem(sys.modules, "faerec.text.store", module)
    # embedding is the text stage's job; the fake store already has the vectors
    monkeypatch.setattr("faerec.experiment.runner.embed", lambda *a, **k: {"embedded": 0, "cached": 0})


@pytest.fixture(autouse=True)
def _single_torch_thread(one_torch_thread):
    """One torch thread, as in the trainer tests (tests/conftest.py says why)."""


@pytest.fixture(autouse=True)
def _runs_in_process(monkeypatch: pytest.MonkeyPatch):
    """Runs train in the test's process, where fake_store's patched modules are seen (a child process would not
    see them); test_kill and test_runner's isolation test check the default, a child process per run."""
    monkeypatch.setenv("FAEREC_EXPERIMENT_IN_PROCESS", "1")
