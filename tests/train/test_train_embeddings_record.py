"""A run records the exact LLM table it was trained with; rebuilding it on other vectors is refused."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from faerec.errors import FaerecError
from faerec.eval.run import evaluate_run
from faerec.models import ModelConfig
from faerec.runs.config import TrainConfig
from faerec.train import run


def small_config(method: str = "faerec") -> TrainConfig:
    model = ModelConfig.create(backbone="sasrec", method=method, hidden=16, layers=1, heads=1, max_len=8)
    return TrainConfig(model=model, epochs=2, patience=50, batch_size=32, device="cpu")


def test_evaluate_refuses_a_run_whose_dataset_was_re_embedded(tiny_dataset, tmp_path, fake_store, monkeypatch):
    run_dir = tmp_path / "run"
    trained = run.train_run(tiny_dataset, small_config(), run_dir, progress=False)
    recorded = json.loads((run_dir / "config.json").read_text())["embeddings"]
    assert recorded["encoder"] == "minilm" and recorded["fingerprint"] == "fake-minilm"
    assert len(recorded["table_digest"]) == 64
    again = evaluate_run(run_dir)  # same embeddings: fine, same numbers
    assert again["test"]["overall"] == trained["test"]["overall"]

    store = sys.modules["faerec.text.store"]
    original = store.load_embeddings

    def re_embedded(dataset_dir, encoder="minilm"):  # "E2": the same encoder, other vectors
        table, fingerprint = original(dataset_dir, encoder)
        table = table.copy()
        table[3] = -table[3]
        return table, fingerprint

    monkeypatch.setattr(store, "load_embeddings", re_embedded)
    with pytest.raises(FaerecError) as refused:
        evaluate_run(run_dir)
    message = str(refused.value)
    assert "re-embedded" in message and "fake-minilm" in message
    assert recorded["table_digest"][:12] in message  # names the table it was trained on and the new one
    new_digest = message.split("now fake-minilm table ")[1][:12]
    assert new_digest != recorded["table_digest"][:12] and all(c in "0123456789abcdef" for c in new_digest)


def test_a_method_without_text_records_no_embeddings(tiny_dataset, tmp_path):
    run_dir = tmp_path / "base"
    run.train_run(tiny_dataset, small_config("base"), run_dir, progress=False)
    assert json.loads((run_dir / "config.json").read_text())["embeddings"] is None
    assert np.isfinite(evaluate_run(run_dir)["test"]["overall"]["ndcg@10"])
