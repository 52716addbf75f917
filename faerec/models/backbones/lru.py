"""LRURec (Yue et al., WSDM 2024): linear recurrent units with a diagonal complex recurrence.

Per layer: u_t = gamma * (B x_t) (complex, state size 2d), h_t = lambda * h_{t-1} + u_t, output
Re(C h_t) + residual, LayerNorm, then a GELU feed-forward (inner 4d) with residual + LayerNorm. lambda uses
the exponential parameterisation lambda = exp(-exp(nu_log) + i exp(theta_log)) with the ring initialisation
|lambda| in [r_min, r_max], phase in [0, 2 pi), and the learned normalisation gamma initialised to
sqrt(1 - |lambda|^2). There are no position embeddings: the recurrence is ordered.

The projections are real layers on (real | imaginary) halves: ``in_proj`` maps d -> 2S (both parts of
B x + b), ``out_proj`` maps the concatenated parts 2S -> d, which is exactly Re(C h) + bias with C's real and
imaginary parts as learned weights; so they stay on the ordinary (bf16-autocast) path, and only the scan
runs in complex64.

The recurrence is computed with a log-depth (Hillis-Steele) scan: after the round with offset k,
h[t] = sum_{s > t - 2k} lambda^{t-s} u[s]; ceil(log2 L) rounds of element-wise work, no loop over time.
lambda^k is evaluated in closed form, exp(k (-nu + i theta)). Padding slots hold u = 0
and precede every real item (left padding), so no state leaks from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.layers import Dropout, PostNormBlock, SeqLayout, init_normal_
from faerec.models.registry import register_backbone

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


@dataclass
class LruOptions:
    lru_r_min: float = 0.8  # ring initialisation of |lambda|
    lru_r_max: float = 0.99

    def check(self, cfg: ModelConfig) -> None:
        if not 0.0 < self.lru_r_min < self.lru_r_max < 1.0:
            raise FaerecError("lru: need 0 < lru_r_min < lru_r_max < 1")


def diagonal_scan(u: torch.Tensor, log_lambda: torch.Tensor) -> torch.Tensor:
    """h[t] = lambda h[t-1] + u[t] along dim 1 of a complex [B, L, S] tensor, lambda = exp(log_lambda) [S]."""
    length = u.shape[1]
    h, offset = u, 1
    while offset < length:
        # h[t] += lambda^offset h[t - offset] (zero before the start)
        h = h + torch.exp(offset * log_lambda) * F.pad(h, (0, 0, offset, 0))[:, :length]
        offset *= 2
    return h


class LinearRecurrentUnit(nn.Module):
    def __init__(self, hidden: int, r_min: float, r_max: float) -> None:
        super().__init__()
        self.state = 2 * hidden
        u1, u2 = torch.rand(self.state), torch.rand(self.state)
        nu_log = torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        theta_log = torch.log(u2 * 2 * math.pi)
        gamma_log = 0.5 * torch.log1p(-torch.exp(-2 * torch.exp(nu_log)))  # log sqrt(1 - |lambda|^2)
        self.nu_log = nn.Parameter(nu_log)
        self.theta_log = nn.Parameter(theta_log)
        self.gamma_log = nn.Parameter(gamma_log)
        self.in_proj = nn.Linear(hidden, 2 * self.state)
        self.out_proj = nn.Linear(2 * self.state, hidden)

    def _recur(self, grid: torch.Tensor, _: object) -> torch.Tensor:
        with torch.autocast(device_type=grid.device.type, enabled=False):  # 50-step powers in float32
            grid = grid.float()
            u = torch.complex(grid[..., : self.state], grid[..., self.state :])
            h = diagonal_scan(u, torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        return torch.cat([h.real, h.imag], dim=-1)

    def forward(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        u = self.in_proj(tokens) * torch.exp(self.gamma_log).repeat(2)  # [N, 2S]: (re | im) * gamma
        return self.out_proj(layout.mix(u, self._recur, 2 * self.state))


@register_backbone("lru", options=LruOptions)
class LRURec(Backbone):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.embed_dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            PostNormBlock(LinearRecurrentUnit(cfg.hidden, cfg.backbone_options.lru_r_min, cfg.backbone_options.lru_r_max), cfg.hidden, cfg.dropout,
                          cfg.layer_norm_eps, inner_dropout=True)
            for _ in range(cfg.layers))
        self.apply(partial(init_normal_, std=cfg.init_std))  # leaves nu/theta/gamma (plain Parameters) alone

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        return self.embed_dropout(items)

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens, layout)
        return tokens
