"""NARM backbone: the causal attention equals a naive per-position loop, the output at the last position is
the paper's session encoder, causality, left-padding invariance, and a finite FAERec training loss."""

from __future__ import annotations

import pytest
import torch
from models_fixtures import left_padded, make_model

from faerec.models.layers import SeqLayout


def build(world, method: str = "base", seed: int = 0, **overrides):
    return make_model(world, seed=seed, backbone="narm", method=method, **{"layers": 1, **overrides})


def test_attention_weights_match_a_naive_loop(world):
    backbone = build(world).backbone
    gen = torch.Generator().manual_seed(1)
    states = torch.randn(3, 6, 16, generator=gen)
    real = torch.arange(6)[None, :] >= torch.tensor([[0], [2], [5]])  # lengths 6, 4, 1 (left padded)
    a1, a2, v = backbone.query_proj.weight, backbone.memory_proj.weight, backbone.score.weight[0]
    expected = torch.zeros(3, 6, 6)
    for b in range(3):
        for t in range(6):
            for j in range(t + 1):
                if real[b, j]:
                    expected[b, t, j] = v @ torch.sigmoid(a1 @ states[b, t] + a2 @ states[b, j])
    with torch.no_grad():
        torch.testing.assert_close(backbone.attention_weights(states, real), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers", [1, 2])
def test_every_position_is_the_paper_encoder_of_its_prefix(world, layers):
    """Output at t = B [h_t; sum_{j<=t} alpha_tj h_j], the paper's NARM run on the prefix ending at t, with
    the GRU run on the unpadded row (so padding and bucketing change nothing)."""
    model = build(world, layers=layers).eval()
    backbone = model.backbone
    ids = left_padded([12, 7, 3, 1], 12, seed=2)
    with torch.no_grad():
        got = model.sequence_states(ids)
        for row in range(ids.shape[0]):
            n = int((ids[row] != 0).sum())
            x = model.embedder.sequence_input(ids[row : row + 1, 12 - n :], SeqLayout.from_ids(
                ids[row : row + 1, 12 - n :]), backbone)
            states, _ = backbone.gru(x[None])
            states = states[0]  # [n, D]
            for t in range(n):
                prefix, query = states[: t + 1], states[t]  # the paper: query = last state of the session
                alpha = backbone.score(torch.sigmoid(backbone.query_proj(query) + backbone.memory_proj(prefix)))
                local = (alpha * prefix).sum(0)
                expected = backbone.decoder(torch.cat([query, local]))
                torch.testing.assert_close(got[row, 12 - n + t], expected, rtol=1e-5, atol=1e-5)


def test_bias_free_gru_keeps_a_zero_state_through_padding(world):
    backbone = build(world, layers=2).backbone
    x = torch.cat([torch.zeros(2, 5, 16), torch.randn(2, 3, 16)], dim=1)
    with torch.no_grad():
        padded, _ = backbone.gru(x)
        unpadded, _ = backbone.gru(x[:, 5:])
    assert padded[:, :5].abs().max() == 0
    torch.testing.assert_close(padded[:, 5:], unpadded, rtol=0, atol=1e-6)
