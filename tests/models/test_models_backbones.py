"""Backbone-specific checks (the shared contract is in test_models_contract.py)."""

from __future__ import annotations

import pytest
import torch
from models_fixtures import left_padded, make_model


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
