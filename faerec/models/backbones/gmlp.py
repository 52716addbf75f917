"""gMLP (Liu et al., NeurIPS 2021, "Pay Attention to MLPs") as a sequential-recommendation encoder: an
all-MLP network whose only token mixing is a Spatial Gating Unit.

Each block: x + Dropout(W_down SGU(GELU(W_up LN(x)))), with W_up: d -> 2 f (f = ff_mult * d) and W_down:
f -> d. The Spatial Gating Unit splits its input into halves u, v (f channels each), normalises v with a
LayerNorm, projects it along the SEQUENCE axis, v'[t] = sum_s W[t, s] v[s] + b[t] (one [L, L] matrix shared
by all channels), and returns u * v'. As in the paper W starts near zero (uniform in +-1e-3 / max_len) and b
at one, so every block starts close to a plain feed-forward layer. No position embeddings: W is indexed by
absolute position and so encodes order itself (the paper uses none either). A final LayerNorm follows the
blocks. Reference code read (not copied): lucidrains/g-mlp-pytorch (``SpatialGatingUnit`` with its causal
option); RecBole (RUCAIBox/RecBole) ships no gMLP model, so the block follows the paper's description.

Deviations from the paper and its usual implementations, and why:

- Causal spatial projection. The paper's W is a dense [L, L] matrix (bidirectional, for masked-language
  modelling and classification), so each position mixes in later items. This package trains with next-item
  targets at every position, so W is made lower-triangular: the effective matrix is tril(W) (the parameter's
  upper triangle is initialised to zero and receives no gradient), so position t reads positions s <= t.
- Sequences shorter than max_len (packed-token interface, ``SeqLayout``). Rows are left-padded and positions
  are counted from the right, as ``LearnedPositions``: a bucket's grid of length G uses the bottom-right
  G x G block of W (and the last G biases), so the most recent item always uses row max_len - 1
  (lucidrains' causal variant takes the TOP-LEFT n x n block, i.e. positions counted from the left of a
  right-padded or unpadded row; with left padding that would shift every row's weights). v is zero
  at padding slots (the LayerNorm runs on real tokens only), so real positions never read padding and extra
  left padding changes no output.
- Sizes: the paper's d_ffn (here 2 f) is ``ff_mult``-relative (default 2, i.e. u and v have 2d channels
  each, d_ffn = 4d); one spatial matrix shared by all channels (the paper's single-head SGU); no tiny
  attention (aMLP).
- Dropout (``cfg.dropout``) on the embeddings and on each block's residual branch, the regularisation of
  the other backbones here (the paper does not prescribe one for this setting); N(0, init_std) init of the
  linear layers, as the other backbones.
- Scoring (dot product with the item table) and the loss belong to the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.layers import Dropout, GridBucket, SeqLayout, init_normal_
from faerec.models.registry import register_backbone

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


@dataclass
class GmlpOptions:
    ff_mult: int = 2  # u and v each have ff_mult * hidden channels (d_ffn = 2 * ff_mult * hidden)

    def check(self, cfg: ModelConfig) -> None:
        if self.ff_mult < 1:
            raise FaerecError(f"gmlp: ff_mult must be >= 1, got {self.ff_mult}")


class CausalSpatialGatingUnit(nn.Module):
    def __init__(self, channels: int, max_len: int, eps: float) -> None:
        super().__init__()
        self.max_len = max_len
        self.norm = nn.LayerNorm(channels, eps=eps)
        init = 1e-3 / max_len
        self.weight = nn.Parameter(torch.empty(max_len, max_len).uniform_(-init, init).tril())
        self.bias = nn.Parameter(torch.ones(max_len))

    def spatial_weight(self, length: int | None = None) -> torch.Tensor:
        """The effective lower-triangular [length, length] matrix for the last ``length`` positions."""
        start = self.max_len - (self.max_len if length is None else length)
        return torch.tril(self.weight)[start:, start:]

    def project(self, grid: torch.Tensor, bucket: GridBucket | None = None) -> torch.Tensor:
        """[rows, G, C] zero-padded v -> [rows, G, C]: v'[t] = sum_{s <= t} W[t, s] v[s] + b[t]."""
        length = grid.shape[1]
        weight = self.spatial_weight(length).to(grid.dtype)
        return weight @ grid + self.bias[self.max_len - length :, None].to(grid.dtype)

    def forward(self, z: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        u, v = z.chunk(2, dim=-1)
        return u * layout.mix(self.norm(v), self.project, v.shape[-1])


class GmlpBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        channels = cfg.backbone_options.ff_mult * cfg.hidden
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.up = nn.Linear(cfg.hidden, 2 * channels)
        self.activation = nn.GELU()
        self.sgu = CausalSpatialGatingUnit(channels, cfg.max_len, cfg.layer_norm_eps)
        self.down = nn.Linear(channels, cfg.hidden)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        gated = self.sgu(self.activation(self.up(self.norm(tokens))), layout)
        return tokens + self.dropout(self.down(gated))


@register_backbone("gmlp", options=GmlpOptions)
class GMLP(Backbone):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.embed_dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(GmlpBlock(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.apply(partial(init_normal_, std=cfg.init_std))  # leaves the spatial W and b (plain Parameters)

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        return self.embed_dropout(items)  # no position embeddings: the spatial weights are position-indexed

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens, layout)
        return self.final_norm(tokens)
