"""Backbones: output shapes, causality, padding and batch-composition invariance, no NaN on empty rows."""

from __future__ import annotations

import pytest
import torch
from models_fixtures import left_padded, make_model

from faerec.models.layers import SeqLayout

COMBOS = [(b, m) for b in ("sasrec", "fmlp", "lru") for m in ("base", "faerec")]


def hidden_states(model, ids: torch.Tensor) -> torch.Tensor:
    """[B, L, D] backbone outputs at every position (zeros at padding)."""
    layout = SeqLayout.from_ids(ids)
    tokens = model.backbone.encode(model.embedder.sequence_input(ids, layout, model.backbone), layout)
    grid = tokens.new_zeros(ids.numel(), tokens.shape[-1])
    grid[layout.flat_index] = tokens
    return grid.view(*ids.shape, -1)


@pytest.mark.parametrize("backbone,method", COMBOS)
def test_shapes(world, backbone, method):
    model = make_model(world, backbone=backbone, method=method).eval()
    ids = left_padded([12, 5, 1, 0], 12)
    with torch.no_grad():
        assert hidden_states(model, ids).shape == (4, 12, 16)
        assert model.user_embedding(ids).shape == (4, 16)
        assert model.item_table().shape == (41, 16)


@pytest.mark.parametrize("backbone,method", COMBOS)
def test_causal(world, backbone, method):
    """Changing the item at position t changes no output at positions < t (and does change position t)."""
    model = make_model(world, backbone=backbone, method=method).eval()
    ids = left_padded([12, 9, 4], 12, seed=3)
    t = 8
    changed = ids.clone()
    changed[:, t] = changed[:, t] % 40 + 1  # a different real item
    with torch.no_grad():
        before, after = hidden_states(model, ids), hidden_states(model, changed)
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-5)
    assert (after[:, t] - before[:, t]).abs().max() > 1e-4


@pytest.mark.parametrize("backbone,method", COMBOS)
def test_padding_and_batch_invariance(world, backbone, method):
    """A user's embedding depends neither on how far the batch is padded nor on the other rows (rows are
    bucketed by length internally)."""
    model = make_model(world, backbone=backbone, method=method).eval()
    batch = left_padded([12, 6, 3, 1, 7], 12, seed=5)
    with torch.no_grad():
        together = model.user_embedding(batch)
        for row in range(batch.shape[0]):
            alone = model.user_embedding(batch[row : row + 1])
            length = int((batch[row] != 0).sum())
            shorter = model.user_embedding(batch[row : row + 1, 12 - length :])  # no padding at all
            torch.testing.assert_close(alone[0], together[row], rtol=0, atol=1e-5)
            torch.testing.assert_close(shorter[0], together[row], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backbone,method", COMBOS)
def test_fully_padded_rows_give_no_nan(world, backbone, method):
    from models_fixtures import training_batch

    model = make_model(world, backbone=backbone, method=method).train()
    inputs, pos, neg = training_batch([0, 1, 0, 11], 12)
    loss, parts = model.training_loss(inputs, pos, neg, epoch=0)
    loss.backward()
    assert torch.isfinite(loss) and all(v == v for v in parts.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        users = model.user_embedding(left_padded([0, 0, 3], 12))
    assert torch.isfinite(users).all() and users[:2].abs().sum() == 0
    empty = torch.zeros(2, 12, dtype=torch.long)
    loss, _ = model.train().training_loss(empty, empty, empty, epoch=0)
    assert loss.item() == 0.0


def test_sequence_longer_than_max_len_is_rejected(world):
    from faerec.errors import FaerecError

    model = make_model(world).eval()
    with pytest.raises(FaerecError, match="max_len"):
        model.user_embedding(left_padded([13], 13))


def test_lru_scan_matches_sequential_recurrence():
    from faerec.models.backbones.lru import diagonal_scan

    gen = torch.Generator().manual_seed(0)
    u_re, u_im = torch.randn(3, 11, 5, generator=gen), torch.randn(3, 11, 5, generator=gen)
    nu, theta = torch.rand(5, generator=gen) * 0.3, torch.rand(5, generator=gen) * 6.28
    lam = torch.exp(torch.complex(-nu, theta))
    u = torch.complex(u_re, u_im)
    state, expected = torch.zeros(3, 5, dtype=torch.complex64), []
    for t in range(11):
        state = lam * state + u[:, t]
        expected.append(state)
    scanned = diagonal_scan(u, torch.complex(-nu, theta))
    torch.testing.assert_close(scanned, torch.stack(expected, 1), rtol=1e-5, atol=1e-5)


def test_fmlp_filter_is_the_causal_convolution_with_its_kernel():
    from faerec.models.backbones.fmlp import CausalFrequencyFilter

    filt = CausalFrequencyFilter(max_len=9, hidden=3, std=1.0)
    x = torch.randn(2, 7, 3)
    k = filt.kernel.detach()
    expected = torch.stack([sum(k[s] * x[:, t - s] for s in range(t + 1)) for t in range(7)], 1)
    torch.testing.assert_close(filt.convolve(x).detach(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backbone", ["sasrec", "fmlp", "lru"])
def test_bf16_autocast_training_step(world, backbone):
    from models_fixtures import training_batch

    model = make_model(world, backbone=backbone, method="faerec").train()
    inputs, pos, neg = training_batch([11, 4, 0], 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, parts = model.training_loss(inputs, pos, neg, epoch=0)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32 and parts["item_align"] > 0
