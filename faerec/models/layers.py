"""Small building blocks shared by the backbones and item embedders.

``SeqLayout`` is the speed trick of this package. A Beauty batch of 256 x 50 holds ~1,500 real items and
~11,000 padding slots. Position-wise work (linear layers, feed-forward, gate, layer norms) runs on the packed
real tokens [N, D] only. The sequence-mixing step (attention, filter, recurrence) needs a [rows, length, D]
grid; rows are grouped into buckets of similar span (the distance from a row's first real item to the end,
rounded up to a power of two), and each bucket gets a grid just as long as its longest row. Mixing cost
then follows the real lengths (sum of span^2 for attention) instead of B * L^2. Padding slots in a grid are
exactly zero, and every mixing step is per row and causal, so the bucketing changes no result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[index]`` along dim 0 for an integer index, as ``index_select``.

    Same forward, but the backward is ``index_add`` (rows summed in a fixed order, one vectorised row add per
    index) instead of advanced indexing's ``index_put(accumulate=True)``, which on CPU walks the gradient one
    element at a time: 6x slower for the [1,767, 384] gathers of a Beauty batch, and with repeated indices
    its multi-threaded atomic adds made the last bits of a gradient vary between runs.
    """
    return torch.index_select(values, 0, index)


def take_where(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values[mask]`` for a boolean row mask, with ``take``'s backward."""
    return torch.index_select(values, 0, mask.nonzero().squeeze(1))


@dataclass(frozen=True)
class GridBucket:
    """Rows of similar span, mixed together on a [rows, length] grid holding their last ``length`` columns."""

    rows: int
    length: int
    real: torch.Tensor  # bool [rows, length]

    @property
    def size(self) -> int:
        return self.rows * self.length


@dataclass(frozen=True)
class SeqLayout:
    """Where the real (non-padding) tokens of a [B, L] batch of item ids live.

    Tokens are packed in row-major order of the [B, L] batch; ``columns`` gives each token's column, from
    which backbones derive positions (counted from the right end, so the last column is the most recent).
    The bucket grids lie back to back in one flat buffer; ``grid_index`` is each token's slot in it, so
    packing all grids is one scatter and unpacking one gather, whatever the number of buckets.
    """

    real: torch.Tensor  # bool [B, L], True at non-padding positions
    flat_index: torch.Tensor  # [N] int64 positions of the real tokens in the flattened [B * L] batch
    columns: torch.Tensor  # [N] int64 column of each token
    buckets: tuple[GridBucket, ...]
    grid_index: torch.Tensor  # [N] int64 slot of each token in the concatenated bucket grids

    @classmethod
    def from_ids(cls, ids: torch.Tensor) -> SeqLayout:
        return cls.from_mask(ids != 0)

    @classmethod
    def from_mask(cls, real: torch.Tensor) -> SeqLayout:
        batch, length = real.shape
        flat_index = real.reshape(-1).nonzero().squeeze(1)
        token_row, columns = flat_index // length, flat_index % length
        cols = torch.arange(length, device=real.device)
        first_real = torch.where(real, cols, length).amin(1) if length else real.new_zeros(batch, dtype=torch.long)
        span = length - first_real  # [B], 0 for a fully padded row
        bucket_of_row = torch.ceil(torch.log2(span.clamp_min(1).double())).long()  # 1, 2, 3-4, 5-8, ...
        # slot of (row, column) in the buffer = row_base[row] + column; a row's grid starts at column
        # length - grid_len, so its base is its grid row's first slot minus that many
        row_base = torch.zeros(batch, dtype=torch.long, device=real.device)
        buckets, start = [], 0
        for key in torch.unique(bucket_of_row[span > 0]).tolist():
            rows = ((bucket_of_row == key) & (span > 0)).nonzero().squeeze(1)
            grid_len = int(span[rows].max())
            slots = torch.arange(rows.numel(), device=real.device) * grid_len
            row_base[rows] = start + slots - (length - grid_len)
            bucket = GridBucket(rows.numel(), grid_len, real[rows, length - grid_len :])
            buckets.append(bucket)
            start += bucket.size
        return cls(real, flat_index, columns, tuple(buckets), row_base[token_row] + columns)

    @property
    def batch(self) -> int:
        return self.real.shape[0]

    @property
    def length(self) -> int:
        return self.real.shape[1]

    @property
    def n_tokens(self) -> int:
        return int(self.flat_index.numel())

    def tokens_of(self, values: torch.Tensor) -> torch.Tensor:
        """[B, L, ...] per-position values (e.g. ids) -> [N, ...] at the real tokens."""
        return take(values.reshape(self.batch * self.length, *values.shape[2:]), self.flat_index)

    def mix(
        self, tokens: torch.Tensor, mixer: Callable[[torch.Tensor, GridBucket], torch.Tensor], out_dim: int
    ) -> torch.Tensor:
        """Apply a per-row sequence ``mixer`` ([rows, length, D] grid with zero padding -> [rows, length,
        out_dim]) to every bucket and return its outputs at the real tokens, [N, out_dim]."""
        sizes = [bucket.size for bucket in self.buckets]
        grids = tokens.new_zeros(sum(sizes), tokens.shape[-1]).index_copy(0, self.grid_index, tokens)
        # split, not one slice per bucket: a slice's backward is a zero-filled buffer of the whole grid, and the
        # buckets' buffers are then summed (6 grids of zeros and 5 adds per layer on Beauty); split's backward
        # is one concatenation of the buckets' gradients, the same values
        mixed = [mixer(grid.view(b.rows, b.length, -1), b).reshape(b.size, out_dim)
                 for grid, b in zip(grids.split(sizes), self.buckets, strict=True)]
        if not mixed:
            return tokens.new_zeros(0, out_dim)
        return take(mixed[0] if len(mixed) == 1 else torch.cat(mixed), self.grid_index).to(tokens.dtype)

    def last_tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [R], token indices [R]) of the rows whose column L - 1 is real, and that token of each."""
        rows = self.real[:, -1].nonzero().squeeze(1)
        # the token at (b, L-1) is the last one of row b: number (tokens in rows <= b) - 1
        token_of_row_end = torch.cumsum(self.real.sum(1), 0) - 1
        return rows, token_of_row_end[rows]

    def last(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [B, D]: each row's token at column L - 1, zero where that position is padding."""
        rows, index = self.last_tokens()
        return self.rows_to_batch(take(tokens, index), rows)

    def rows_to_batch(self, values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """[R, D] values of the given rows -> [B, D] with zeros elsewhere."""
        return values.new_zeros(self.batch, values.shape[-1]).index_copy(0, rows, values)


class Dropout(nn.Module):
    """Inverted dropout. Same distribution as ``nn.Dropout``, but on CPU the keep-mask comes from 16-bit
    slices of 64-bit random integers: torch's CPU ``bernoulli_`` costs ~15 ns per element, which made dropout
    (some 2.5 M elements per FAERec training batch) a fifth of a CPU training step. p is honoured to 2^-16."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.threshold = -(1 << 15) + round(self.p * (1 << 16))  # int16 draws >= threshold are kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        n = x.numel()
        # random_(lowest, None) is torch's full 64-bit path: one generator draw per word, no range reduction
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
        keep = words.view(torch.int16)[:n].view(x.shape) >= self.threshold
        # x * bool promotes without a float copy of the mask; the scale goes in place on the product
        return x.mul(keep).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PointwiseFeedForward(nn.Module):
    """Two position-wise linear layers: Linear(d, inner) -> activation -> dropout? -> Linear(inner, d)."""

    def __init__(self, hidden: int, inner: int, activation: str, dropout: float, inner_dropout: bool) -> None:
        super().__init__()
        self.dense_in = nn.Linear(hidden, inner)
        self.activation = {"relu": nn.ReLU(), "gelu": nn.GELU()}[activation]
        self.inner_dropout = Dropout(dropout) if inner_dropout else nn.Identity()
        self.dense_out = nn.Linear(inner, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_out(self.inner_dropout(self.activation(self.dense_in(x))))


class PostNormBlock(nn.Module):
    """LN(x + Dropout(mixer(x))), then LN(x + Dropout(FFN(x))): the post-LN residual block of FMLP-Rec and
    LRURec, which differ only in the token mixer (called as ``mixer(tokens, layout)``) and the FFN's dropout."""

    def __init__(self, mixer: nn.Module, hidden: int, dropout: float, eps: float, inner_dropout: bool) -> None:
        super().__init__()
        self.mixer = mixer
        self.mixer_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn = PointwiseFeedForward(hidden, 4 * hidden, "gelu", dropout, inner_dropout=inner_dropout)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        tokens = self.mixer_norm(tokens + self.dropout(self.mixer(tokens, layout)))
        return self.ffn_norm(tokens + self.dropout(self.ffn(tokens)))

def init_normal_(module: nn.Module, std: float) -> None:
    """BERT-style init used by the FMLP-Rec code base the authors build on: N(0, std) weights, zero biases,
    unit LayerNorms. Applied with ``module.apply``; modules with their own init run theirs afterwards."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
