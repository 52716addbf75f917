"""gMLP backbone: lower-triangular spatial weights (also after a gradient step), the spatial projection
equals a naive loop with right-aligned positions, paper initialisation, causality, left-padding invariance,
option checks, and a finite FAERec training loss."""

from __future__ import annotations

import pytest
import torch
from models_fixtures import left_padded, make_model, training_batch

from faerec.errors import FaerecError
from faerec.models import ModelConfig
from faerec.models.backbones.gmlp import CausalSpatialGatingUnit


def build(world, method: str = "base", seed: int = 0, **overrides):
    return make_model(world, seed=seed, backbone="gmlp", method=method, **overrides)


def test_initialisation_follows_the_paper(world):
    for block in build(world).backbone.blocks:
        sgu = block.sgu
        assert sgu.weight.shape == (12, 12)
        assert sgu.weight.abs().max() <= 1e-3 / 12 and torch.equal(sgu.bias, torch.ones(12))
        assert sgu.weight.triu(1).abs().max() == 0
        assert block.up.out_features == 2 * 2 * 16 and block.down.in_features == 2 * 16  # ff_mult = 2


def test_spatial_weights_stay_lower_triangular_after_training_steps(world):
    model = build(world).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    inputs, pos, neg = training_batch([11, 7, 3], 12)
    for _ in range(2):
        optimizer.zero_grad()
        model.training_loss(inputs, pos, neg, epoch=0)[0].backward()
        for block in model.backbone.blocks:
            assert block.sgu.weight.grad.triu(1).abs().max() == 0
            assert block.sgu.weight.grad.tril().abs().max() > 0
        optimizer.step()
    for block in model.backbone.blocks:
        sgu = block.sgu
        assert sgu.weight.triu(1).abs().max() == 0
        effective = sgu.spatial_weight()
        assert torch.equal(effective, effective.tril()) and effective.tril().abs().max() > 1e-3 / 12


def test_projection_is_the_causal_sum_with_right_aligned_positions():
    torch.manual_seed(0)
    sgu = CausalSpatialGatingUnit(channels=3, max_len=9, eps=1e-12)
    with torch.no_grad():
        sgu.weight.normal_()  # a full matrix: only its lower triangle may be used
        sgu.bias.normal_()
        v = torch.randn(2, 5, 3)
        got = sgu.project(v)
        w, b, off = sgu.weight, sgu.bias, 9 - 5  # grid column j is position off + j
        expected = torch.stack(
            [sum(w[off + t, off + s] * v[:, s] for s in range(t + 1)) + b[off + t] for t in range(5)], 1)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        changed = v.clone()
        changed[:, 3] += 1.0  # a later position changes nothing before it
        torch.testing.assert_close(sgu.project(changed)[:, :3], got[:, :3], rtol=0, atol=0)


def test_left_padding_invariance(world):
    model = build(world).eval()
    with torch.no_grad():
        for block in model.backbone.blocks:
            block.sgu.weight.normal_(std=0.3)
    batch = left_padded([12, 10, 9, 8, 6, 5, 3, 1], 12, seed=5)  # rows share length buckets
    with torch.no_grad():
        together = model.user_embedding(batch)
        for row in range(batch.shape[0]):
            n = int((batch[row] != 0).sum())
            for pad in sorted({0, min(2, 12 - n), 12 - n}):  # none, a little, up to max_len
                row_ids = torch.cat([torch.zeros(pad, dtype=torch.long), batch[row, 12 - n :]])[None]
                alone = model.user_embedding(row_ids)
                torch.testing.assert_close(alone[0], together[row], rtol=0, atol=1e-5)


def test_options_are_checked(world):
    with pytest.raises(FaerecError, match="ff_mult"):
        ModelConfig.create(backbone="gmlp", ff_mult=0)
    assert ModelConfig.create(backbone="gmlp", ff_mult=3).backbone_options.ff_mult == 3
