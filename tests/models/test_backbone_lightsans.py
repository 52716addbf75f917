"""LightSANs backbone: causal interest pooling and the whole attention equal naive loops over prefixes,
causality, left-padding invariance, option checks, and a finite FAERec training loss."""

from __future__ import annotations

import pytest
import torch
from models_fixtures import make_model

from faerec.errors import FaerecError
from faerec.models import ModelConfig
from faerec.models.backbones.lightsans import CausalInterestPooling, causal_key_mask
from faerec.models.layers import GridBucket


def build(world, method: str = "base", seed: int = 0, **overrides):
    return make_model(world, seed=seed, backbone="lightsans", method=method, **{"n_interests": 3, **overrides})


REAL = torch.arange(7)[None, :] >= torch.tensor([[0], [3], [6]])  # lengths 7, 4, 1 (left padded)


def test_causal_pooling_matches_a_loop_over_prefixes():
    torch.manual_seed(0)
    pool = CausalInterestPooling(hidden=5, n_interests=3)
    x = torch.randn(3, 7, 5) * REAL[..., None]
    with torch.no_grad():
        got = pool(x, causal_key_mask(REAL))  # [3, 7, 3, 5]
        for b in range(3):
            for t in range(7):
                if not REAL[b, t]:
                    continue
                prefix = x[b, : t + 1][REAL[b, : t + 1]]  # the real items at positions <= t
                weights = (prefix @ pool.theta).softmax(0)  # [n, k]: softmax over the prefix
                torch.testing.assert_close(got[b, t], weights.T @ prefix, rtol=1e-5, atol=1e-6)
        # at the last position of a full row: the original (whole-sequence) item-to-interest aggregation
        whole = (x[0] @ pool.theta).softmax(0).T @ x[0]
        torch.testing.assert_close(got[0, -1], whole, rtol=1e-5, atol=1e-6)


def test_attention_matches_a_naive_per_position_loop(world):
    model = build(world).eval()
    attention = model.backbone.blocks[0].attention
    heads, d, length = 2, 16, 7
    dh = d // heads
    gen = torch.Generator().manual_seed(4)
    grid = torch.randn(3, length, 3 * d, generator=gen) * REAL[..., None]
    positions = model.backbone.positions.weight[12 - length :]
    bucket = GridBucket(3, length, REAL)
    with torch.no_grad():
        got = attention.mix(grid, bucket, positions)
        pos = attention.pos_qk(attention.pos_norm(positions))
        pos_q, pos_k = pos[:, :d], pos[:, d:]
        for b in range(3):
            for t in range(length):
                if not REAL[b, t]:
                    continue
                keep = [s for s in range(t + 1) if REAL[b, s]]
                q, k, v = grid[b, t, :d], grid[b, keep, d : 2 * d], grid[b, keep, 2 * d :]
                k_int = (k @ attention.key_pool.theta).softmax(0).T @ k  # [n_int, d]
                v_int = (v @ attention.value_pool.theta).softmax(0).T @ v
                out = []
                for h in range(heads):
                    sl = slice(h * dh, (h + 1) * dh)
                    item = ((k_int[:, sl] @ q[sl]) / dh**0.5).softmax(0) @ v_int[:, sl]
                    scores = pos_k[keep, sl] @ pos_q[t, sl] / (2 * dh) ** 0.5
                    out.append(item + scores.softmax(0) @ v[:, sl])
                torch.testing.assert_close(got[b, t], torch.cat(out), rtol=1e-5, atol=1e-6)


def test_options_are_checked(world):
    with pytest.raises(FaerecError, match="divisible"):
        ModelConfig.create(backbone="lightsans", hidden=16, heads=3)
    with pytest.raises(FaerecError, match="n_interests"):
        ModelConfig.create(backbone="lightsans", n_interests=0)
    cfg = ModelConfig.create(backbone="lightsans", n_interests=4)
    assert cfg.backbone_options.n_interests == 4 and cfg.backbone_options.heads == 2
