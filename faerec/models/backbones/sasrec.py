"""SASRec (Kang & McAuley, ICDM 2018): causal multi-head self-attention over the item sequence.

As in the paper: learned absolute positions, blocks ``x + Dropout(g(LayerNorm(x)))`` for g = self-attention
and g = point-wise feed-forward (two d x d layers with ReLU), dropout on embeddings, attention weights and
residual branches, and a final LayerNorm. Attention is ``scaled_dot_product_attention`` with a boolean mask:
position t attends to real positions <= t. A padding position attends only to itself, so a fully padded
row never produces an all-masked softmax (no NaN); padding queries are zero vectors and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone, LearnedPositions
from faerec.models.layers import Dropout, GridBucket, PointwiseFeedForward, SeqLayout, init_normal_, take
from faerec.models.registry import register_backbone

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


@dataclass
class SasrecOptions:
    heads: int = 2  # attention heads

    def check(self, cfg: ModelConfig) -> None:
        if self.heads < 1 or cfg.hidden % self.heads:
            raise FaerecError(f"sasrec: hidden ({cfg.hidden}) must be divisible by heads ({self.heads})")


def causal_attention_mask(real: torch.Tensor) -> torch.Tensor:
    """bool [B, 1, L, L] from bool [B, L]: True where query i may attend to key j (j <= i and key j real,
    or j == i)."""
    length = real.shape[1]
    idx = torch.arange(length, device=real.device)
    causal = idx[None, :] <= idx[:, None]  # [L(query), L(key)]
    allowed = (causal & real[:, None, :]) | torch.eye(length, dtype=torch.bool, device=real.device)
    return allowed.unsqueeze(1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, dropout: Dropout):
    """Scaled dot-product attention with dropout on the weights. Training on CPU computes it explicitly so
    the weights go through our fast ``Dropout``; elsewhere torch's fused kernel does the same computation."""
    if not (dropout.training and dropout.p > 0 and q.device.type == "cpu"):
        p = dropout.p if dropout.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return dropout(scores.masked_fill(~allowed, float("-inf")).softmax(-1)) @ v


class SelfAttentionBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.heads = cfg.backbone_options.heads
        self.attn_dropout = Dropout(cfg.dropout)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)
        self.ffn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.ffn = PointwiseFeedForward(cfg.hidden, cfg.hidden, "relu", cfg.dropout, inner_dropout=True)
        self.dropout = Dropout(cfg.dropout)

    def _attend(self, grid: torch.Tensor, bucket: GridBucket) -> torch.Tensor:
        rows, length, width = grid.shape
        d = width // 3
        q, k, v = grid.view(rows, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        context = attention(q, k, v, causal_attention_mask(bucket.real), self.attn_dropout)
        return context.transpose(1, 2).reshape(rows, length, d)

    def forward(self, tokens: torch.Tensor, layout: SeqLayout, keep: torch.Tensor | None = None) -> torch.Tensor:
        """[N, D] -> [N, D]; with ``keep`` (token indices) only those tokens' outputs, [len(keep), D]: every
        token is still a key and value, but the output projection and feed-forward run on the kept ones."""
        context = layout.mix(self.qkv(self.attn_norm(tokens)), self._attend, tokens.shape[-1])
        if keep is not None:
            context, tokens = take(context, keep), take(tokens, keep)
        tokens = tokens + self.dropout(self.out(context))
        return tokens + self.dropout(self.ffn(self.ffn_norm(tokens)))


@register_backbone("sasrec", options=SasrecOptions)
class SASRec(Backbone):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.positions = LearnedPositions(cfg.max_len, cfg.hidden)
        self.embed_dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.apply(partial(init_normal_, std=cfg.init_std))

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        return self.embed_dropout(items + self.positions(layout))

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens, layout)
        return self.final_norm(tokens)

    def encode_last(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        """As ``encode`` then ``layout.last``, but the last block's output projection and feed-forward (and
        the final norm) run on each row's last token only: a quarter of the linear work of scoring users."""
        rows, last = layout.last_tokens()
        if not self.blocks:
            return layout.rows_to_batch(self.final_norm(take(tokens, last)), rows)
        for block in self.blocks[:-1]:
            tokens = block(tokens, layout)
        return layout.rows_to_batch(self.final_norm(self.blocks[-1](tokens, layout, keep=last)), rows)
