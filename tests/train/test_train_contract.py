"""A one-epoch training run through train_run for every registered backbone x method (from the registries:
a newly registered model is smoke-tested here without editing a list)."""

from __future__ import annotations

import math

import pytest

from faerec.models import ModelConfig, backbone_names, method_names, method_spec
from faerec.runs.config import TrainConfig
from faerec.train import run

COMBOS = [(b, m) for b in backbone_names() for m in method_names()]


@pytest.mark.parametrize("backbone,method", COMBOS, ids=[f"{b}-{m}" for b, m in COMBOS])
def test_one_epoch_smoke_run(tiny_dataset, tmp_path, fake_store, backbone, method):
    model = ModelConfig.create(backbone=backbone, method=method, hidden=16, layers=1, max_len=8)
    cfg = TrainConfig(model=model, epochs=1, batch_size=64, device="cpu")
    metrics = run.train_run(tiny_dataset, cfg, tmp_path / "run", progress=False)
    assert metrics["method"] == method and metrics["epochs_run"] == 1
    assert all(math.isfinite(metrics["test"]["overall"][k]) for k in ("hr@10", "ndcg@10"))
    assert (("embeddings", "minilm") in fake_store) == method_spec(method).needs_text  # embeddings only when read
