"""FMLP-Rec (Zhou et al., WWW 2022): an all-MLP encoder whose token mixing is a learnable filter applied in
the frequency domain (FFT -> element-wise complex weight -> inverse FFT), followed by a feed-forward layer.

Causality (a deliberate change). The original multiplies the length-L spectrum by a learned weight, i.e. a
CIRCULAR convolution of the whole sequence with a learned length-L kernel: every position mixes in later
items, and since the model is trained with next-item targets at every position, position t then sees its
own target. Here the learned filter is a CAUSAL kernel k[0..L-1] per hidden dimension (lag s multiplies the
item s steps back), and it is applied in the frequency domain with both the sequence and the kernel
zero-padded to 2L, so the circular convolution equals the linear one: y[t] = sum_{s<=t} k[s] x[t-s]. Same
parameter count and the same global (whole-sequence) receptive field as FMLP-Rec, one rfft/irfft pair per
layer, and a later item can no longer change an earlier output (tests/models check this). Padding slots
are zero before filtering, so real positions never read them.

Blocks are post-LN as in FMLP-Rec: LN(x + Dropout(filter(x))), then LN(x + Dropout(FFN(x))) with a GELU
feed-forward of inner size 4d. Positions are learned embeddings.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from faerec.models.backbones.base import Backbone, LearnedPositions
from faerec.models.registry import register_backbone

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig
from faerec.models.layers import Dropout, PostNormBlock, SeqLayout, init_normal_


class CausalFrequencyFilter(nn.Module):
    def __init__(self, max_len: int, hidden: int, std: float) -> None:
        super().__init__()
        # FMLP-Rec draws its spectral weights from N(0, std^2), an initial gain of about std; a time-domain
        # kernel with L taps of N(0, std^2 / L) has the same gain on white input.
        self.kernel = nn.Parameter(torch.randn(max_len, hidden) * (std / math.sqrt(max_len)))

    def forward(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        """[N, D] packed real tokens -> [N, D], each sequence convolved causally with the learned kernel."""
        return layout.mix(tokens, lambda grid, _: self.convolve(grid), tokens.shape[-1])

    def convolve(self, grid: torch.Tensor) -> torch.Tensor:
        """[B, L, D] with zeros at padding -> [B, L, D] causal convolution with the learned kernel."""
        length = grid.shape[1]
        n_fft = 2 * length  # >= 2L - 1: no wrap-around, so the circular convolution is the linear one
        with torch.autocast(device_type=grid.device.type, enabled=False):  # FFTs in float32
            spectrum = torch.fft.rfft(grid.float(), n=n_fft, dim=1)
            response = torch.fft.rfft(self.kernel[:length].float(), n=n_fft, dim=0)
            mixed = torch.fft.irfft(spectrum * response, n=n_fft, dim=1)[:, :length]
        return mixed.to(grid.dtype)


@register_backbone("fmlp")
class FMLPRec(Backbone):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.positions = LearnedPositions(cfg.max_len, cfg.hidden)
        self.embed_dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            PostNormBlock(CausalFrequencyFilter(cfg.max_len, cfg.hidden, cfg.init_std), cfg.hidden, cfg.dropout,
                          cfg.layer_norm_eps, inner_dropout=False)
            for _ in range(cfg.layers))
        self.apply(partial(init_normal_, std=cfg.init_std))

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        return self.embed_dropout(items + self.positions(layout))

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens, layout)
        return tokens
