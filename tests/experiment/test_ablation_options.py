"""The ablation readings of the presets: w/o CLS holds the curriculum's mean weights, w/o AGF (ID only)."""

from __future__ import annotations

import math

import pytest
import torch

from faerec.errors import FaerecError
from faerec.experiment import spec
from faerec.models import ModelConfig, build_model
from faerec.models.losses import curriculum_weights

N_ITEMS, LLM_DIM = 30, 12


def model_of(cfg: ModelConfig, seed: int = 0):
    gen = torch.Generator().manual_seed(5)
    llm = torch.nn.functional.normalize(torch.randn(N_ITEMS + 1, LLM_DIM, generator=gen), dim=-1)
    llm[0] = 0
    counts = torch.randint(1, 20, (N_ITEMS + 1,), generator=gen)
    torch.manual_seed(seed)
    return build_model(cfg.with_changes(hidden=8, layers=1, max_len=6), N_ITEMS, llm, None, counts)


def batch():
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(1, N_ITEMS + 1, (4, 7), generator=gen)
    ids[0, :3] = 0
    inputs, pos = ids[:, :-1] * (ids[:, 1:] != 0), ids[:, 1:] * (ids[:, :-1] != 0)
    neg = torch.randint(1, N_ITEMS + 1, pos.shape, generator=gen) * (pos != 0)
    return inputs, pos, neg


def preset_model(label: str):
    ablations = spec.load("ablations", datasets=["d"])
    return model_of(next(p for p in ablations.points() if p.label == label).config.model)


def test_without_cls_holds_the_curriculum_mean_at_every_epoch():
    full, fixed = preset_model("faerec").embedder, preset_model("w/o CLS").embedder
    period = full.options.period
    assert math.isclose(sum(full.alignment_weights(e)[0] for e in range(int(period))) / period, 0.95)
    inputs, pos, neg = batch()
    model = preset_model("w/o CLS")
    for epoch in (0, 7, 15, 29, 30, 61):
        assert fixed.alignment_weights(epoch) == pytest.approx((0.95, 0.05))
        _, parts = model.training_loss(inputs, pos, neg, epoch)
        assert parts["w_item"] == pytest.approx(0.95) and parts["w_feat"] == pytest.approx(0.05)
    # the full model's schedule moves between (1, 0) and (0.9, 0.1); 0.95 is its mean, not the option default
    assert curriculum_weights(0, 0.9, 1.0, 30) == pytest.approx((1.0, 0.0))
    assert curriculum_weights(15, 0.9, 1.0, 30) == pytest.approx((0.9, 0.1))


def test_id_only_fuses_nothing_but_still_aligns():
    model = preset_model("w/o AGF (ID only)").eval()
    emb = model.embedder
    assert emb.gate is None
    with torch.no_grad():
        torch.testing.assert_close(model.item_table()[1:], emb.fusion_norm(emb.id_embedding.weight)[1:])
        inputs, pos, neg = batch()
        users = model.user_embedding(inputs)
        emb.llm_table.add_(torch.randn_like(emb.llm_table))  # the LLM table no longer reaches the scores
        torch.testing.assert_close(model.user_embedding(inputs), users)
        torch.testing.assert_close(model.item_table()[1:], emb.fusion_norm(emb.id_embedding.weight)[1:])
    model.train()
    loss, parts = model.training_loss(inputs, pos, neg, 0)
    assert parts["item_align"] > 0 and torch.isfinite(loss)
    loss.backward()
    assert emb.projection.net[0].weight.grad.abs().sum() > 0  # the projection is trained by the alignment


def test_gate_false_is_the_equal_weight_fusion_and_keeps_the_llm_stream():
    model = preset_model("w/o AGF").eval()
    assert model.embedder.gate is None and not model.embedder.options.id_only
    inputs, _, _ = batch()
    with torch.no_grad():
        users = model.user_embedding(inputs)
        model.embedder.llm_table.mul_(2.0)
        assert not torch.allclose(model.user_embedding(inputs), users)


def test_id_only_with_gate_false_is_refused():
    with pytest.raises(FaerecError, match="id_only fuses nothing"):
        ModelConfig.create(method="faerec", id_only=True, gate=False)
