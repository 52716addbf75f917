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


@dataclass(frozen=True)
class GridBucket:
    """Rows of similar span, mixed together on a [rows, length] grid holding their last ``length`` columns."""

    token_index: torch.Tensor  # [n] indices into the packed tokens
    grid_index: torch.Tensor  # [n] flat positions of those tokens in the [rows * length] grid
    rows: int
    length: int
    real: torch.Tensor  # bool [rows, length]


@dataclass(frozen=True)
class SeqLayout:
    """Where the real (non-padding) tokens of a [B, L] batch of item ids live.

    Tokens are packed in row-major order of the [B, L] batch; ``columns`` gives each token's column, from
    which backbones derive positions (counted from the right end, so the last column is the most recent).
    """

    real: torch.Tensor  # bool [B, L], True at non-padding positions
    flat_index: torch.Tensor  # [N] int64 positions of the real tokens in the flattened [B * L] batch
    columns: torch.Tensor  # [N] int64 column of each token
    buckets: tuple[GridBucket, ...]

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
        buckets = []
        for key in torch.unique(bucket_of_row[span > 0]).tolist():
            rows = ((bucket_of_row == key) & (span > 0)).nonzero().squeeze(1)
            grid_len = int(span[rows].max())
            row_slot = torch.full((batch,), -1, dtype=torch.long, device=real.device)
            row_slot[rows] = torch.arange(rows.numel(), device=real.device)
            token_index = (row_slot[token_row] >= 0).nonzero().squeeze(1)
            grid_index = row_slot[token_row[token_index]] * grid_len + columns[token_index] - (length - grid_len)
            buckets.append(GridBucket(token_index, grid_index, rows.numel(), grid_len,
                                      real[rows, length - grid_len :]))
        return cls(real, flat_index, columns, tuple(buckets))

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
        return values.reshape(self.batch * self.length, *values.shape[2:])[self.flat_index]

    def mix(
        self, tokens: torch.Tensor, mixer: Callable[[torch.Tensor, GridBucket], torch.Tensor], out_dim: int
    ) -> torch.Tensor:
        """Apply a per-row sequence ``mixer`` ([rows, length, D] grid with zero padding -> [rows, length,
        out_dim]) to every bucket and return its outputs at the real tokens, [N, out_dim]."""
        out = tokens.new_zeros(self.n_tokens, out_dim)
        for bucket in self.buckets:
            grid = tokens.new_zeros(bucket.rows * bucket.length, tokens.shape[-1])
            grid = grid.index_copy(0, bucket.grid_index, tokens[bucket.token_index])
            mixed = mixer(grid.view(bucket.rows, bucket.length, -1), bucket)
            out = out.index_copy(0, bucket.token_index, mixed.reshape(-1, out_dim)[bucket.grid_index].to(out.dtype))
        return out

    def last_tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows [R], token indices [R]) of the rows whose column L - 1 is real, and that token of each."""
        rows = self.real[:, -1].nonzero().squeeze(1)
        # the token at (b, L-1) is the last one of row b: number (tokens in rows <= b) - 1
        token_of_row_end = torch.cumsum(self.real.sum(1), 0) - 1
        return rows, token_of_row_end[rows]

    def last(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [B, D]: each row's token at column L - 1, zero where that position is padding."""
        rows, index = self.last_tokens()
        return self.rows_to_batch(tokens[index], rows)

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
        words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64)
        keep = words.view(torch.int16)[:n].view(x.shape) >= self.threshold
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))

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
