"""faerec.models.layers: the row gathers every backbone and method trains through."""

from __future__ import annotations

import torch

from faerec.models.layers import SeqLayout, take, take_where


def test_take_and_take_where_match_indexing_in_value_and_gradient():
    gen = torch.Generator().manual_seed(3)
    values = torch.randn(50, 7, generator=gen, requires_grad=True)
    index = torch.randint(0, 50, (80,), generator=gen)  # with repeats
    mask = torch.rand(50, generator=gen) > 0.4
    upstream_index, upstream_mask = torch.randn(80, 7, generator=gen), torch.randn(int(mask.sum()), 7, generator=gen)

    def grads(gather):
        values.grad = None
        out_index, out_mask = gather()
        ((out_index * upstream_index).sum() + (out_mask * upstream_mask).sum()).backward()
        return out_index.detach(), out_mask.detach(), values.grad.clone()

    ours = grads(lambda: (take(values, index), take_where(values, mask)))
    indexing = grads(lambda: (values[index], values[mask]))
    assert torch.equal(ours[0], indexing[0]) and torch.equal(ours[1], indexing[1])
    torch.testing.assert_close(ours[2], indexing[2])
    assert take_where(values, torch.zeros(50, dtype=torch.bool)).shape == (0, 7)


def test_mix_over_length_buckets_equals_mixing_the_whole_padded_batch():
    """Rows of many spans (several buckets, one fully padded row): a causal per-row mixer (running sum,
    widened to two output columns per input one) gives, at every real token, the same value and gradient
    as on the full [B, L] grid."""
    gen = torch.Generator().manual_seed(11)
    batch, length, width = 9, 12, 3
    spans = torch.tensor([12, 11, 7, 5, 4, 3, 2, 1, 0])
    real = torch.arange(length)[None, :] >= (length - spans)[:, None]
    layout = SeqLayout.from_mask(real)
    assert len(layout.buckets) > 3
    tokens = torch.randn(layout.n_tokens, width, generator=gen, requires_grad=True)

    def running_sum(grid: torch.Tensor, _bucket=None) -> torch.Tensor:
        return torch.cat([grid.cumsum(1), 2 * grid.cumsum(1)], -1)

    upstream = torch.randn(layout.n_tokens, 2 * width, generator=gen)
    bucketed = layout.mix(tokens, running_sum, 2 * width)
    (grad_bucketed,) = torch.autograd.grad((bucketed * upstream).sum(), tokens)
    full = torch.zeros(batch * length, width).index_copy(0, layout.flat_index, tokens).view(batch, length, width)
    whole = running_sum(full).reshape(batch * length, -1)[layout.flat_index]
    (grad_whole,) = torch.autograd.grad((whole * upstream).sum(), tokens)
    torch.testing.assert_close(bucketed, whole)
    torch.testing.assert_close(grad_bucketed, grad_whole)
