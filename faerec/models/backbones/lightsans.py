"""LightSANs (Fan et al., SIGIR 2021, "Lighter and Better: Low-Rank Decomposed Self-Attention Networks for
Next-Item Recommendation"): self-attention against k latent interests instead of L items, plus a decoupled
position encoding.

Item-to-interest aggregation: the keys K and values V ([L, d]) are each pooled into k interests by a learned
softmax over the sequence, K~ = softmax_L(K Theta_K)^T K ([k, d]; the same for V with its own Theta_V), and
each query attends over those k interests, softmax_k(q K~^T / sqrt(d_h)) V~. Decoupled position encoding:
learned position embeddings take no part in the item embeddings; each layer computes a separate
position-to-position attention softmax((LN(P) W_Q)(LN(P) W_K)^T / sqrt(2 d_h)) from them and applies it to
the (un-pooled) values V, and adds that context to the item-to-interest context. Blocks are post-LN:
LN(x + Dropout(W_O ctx)), then LN(x + Dropout(FFN(x))) with a GELU feed-forward of inner size 4d.
Reference code read (not copied): RecBole's ``recbole/model/sequential_recommender/lightsans.py`` and the
``ItemToInterestAggregation`` / ``LightMultiHeadAttention`` / ``LightTransformerEncoder`` classes of
``recbole/model/layers.py`` (RUCAIBox/RecBole).

Deviations from the paper and from RecBole, and why:

- Causal interest pooling. The original pools keys and values over the WHOLE sequence, so every position's
  interests contain later items, including its own next-item target (this package trains with a target at
  every position). Here each query position t gets its own k interests pooled from its prefix: the pooling
  weights are softmax over s <= t (real s only) of the aggregation scores K_s Theta, computed vectorised with
  a [rows, L, L] causal mask into [rows, L(t), L(s), k] weights. At the last position this equals the
  original pooling of the whole sequence. The per-query interests ([rows, L, k, d]) are not materialised:
  the attention is rewritten exactly as [L, L] mixing matrices over the per-position keys and values (see
  ``LightSelfAttention.mix``), which costs O(L^2 (d + h k)) per row instead of O(L^2 k d).
  ``CausalInterestPooling.forward`` computes the explicit interests (used by the tests). So the causal model
  gives up the paper's linear-in-L cost (its point is O(L k d) instead of O(L^2 d)); at L <= 50 the
  quadratic terms are small, and an exact linear-cost causal pooling would need a sequential (log-sum-exp
  rescaled) scan over positions.
- Causal position attention: the position-to-position scores are masked to keys s <= t (and real s), also
  needed because it is applied to the per-position values V.
- Softmax axes: RecBole normalises both attention maps over the QUERY axis (``Softmax(dim=-2)``); here the
  item attention is normalised over the k interests and the position attention over the keys, the usual
  row-wise attention softmax (a query-axis softmax would also mix positions > t into position t's weights).
- Position-attention scale: one factor 1 / sqrt(2 d_h), RecBole's ``pos_scaling`` (RecBole then divides the
  scores again by sqrt(d_h), a double scaling that flattens the position attention; we apply it once).
- Positions are counted from the right end (the most recent item gets index max_len - 1, as
  ``LearnedPositions``), so left padding changes nothing; RecBole counts from the left of a right-padded row.
- Packed-token interface (``SeqLayout``): position-wise layers run on real tokens only; the mixing runs per
  length bucket on a zero-padded grid, with padding keys masked out (a padding query attends only to itself,
  so no all-masked softmax; its output is dropped).
- The item-embedding LayerNorm and the scoring (dot product with the item table, BCE with sampled
  negatives) belong to the method; ``embed_positions`` adds no positions (they are decoupled) and applies the
  embedding dropout.
- One dropout rate (``cfg.dropout``) for embeddings, both attention maps and residual branches (RecBole has
  separate hidden / attention rates). Theta is drawn from N(0, 1) as in RecBole; other layers use the
  package's N(0, init_std) init.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.layers import Dropout, GridBucket, PointwiseFeedForward, SeqLayout, init_normal_
from faerec.models.registry import register_backbone

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


@dataclass
class LightsansOptions:
    heads: int = 2  # attention heads
    n_interests: int = 5  # k latent interests (RecBole's k_interests)

    def check(self, cfg: ModelConfig) -> None:
        if self.heads < 1 or cfg.hidden % self.heads:
            raise FaerecError(f"lightsans: hidden ({cfg.hidden}) must be divisible by heads ({self.heads})")
        if self.n_interests < 1:
            raise FaerecError(f"lightsans: n_interests must be >= 1, got {self.n_interests}")


def causal_key_mask(real: torch.Tensor) -> torch.Tensor:
    """bool [B, L] -> bool [B, L(query t), L(key s)]: s <= t and key s real, or s == t."""
    length = real.shape[1]
    idx = torch.arange(length, device=real.device)
    allowed = (idx[None, :] <= idx[:, None]) & real[:, None, :]
    return allowed | torch.eye(length, dtype=torch.bool, device=real.device)


class CausalInterestPooling(nn.Module):
    """Item-to-interest aggregation of each query position's prefix: [B, L, d] -> [B, L(query), k, d]."""

    def __init__(self, hidden: int, n_interests: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.randn(hidden, n_interests))

    def weights(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """[B, L, d], bool [B, L, L] -> [B, L(t), L(s), k]: softmax over the allowed s of x_s Theta."""
        scores = (x @ self.theta.to(x.dtype))[:, None, :, :]  # [B, 1, L(s), k]
        return scores.masked_fill(~allowed[..., None], float("-inf")).softmax(2)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        return torch.einsum("btsk,bsd->btkd", self.weights(x, allowed), x)


class LightSelfAttention(nn.Module):
    """Low-rank (item-to-interest) attention plus the decoupled position attention, on one bucket's grid."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        options = cfg.backbone_options
        self.heads = options.heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.key_pool = CausalInterestPooling(cfg.hidden, options.n_interests)
        self.value_pool = CausalInterestPooling(cfg.hidden, options.n_interests)
        self.pos_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.pos_qk = nn.Linear(cfg.hidden, 2 * cfg.hidden)
        self.attn_dropout = Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)

    def mix(self, grid: torch.Tensor, bucket: GridBucket, positions: torch.Tensor) -> torch.Tensor:
        """grid [rows, L, 3d] (q | k | v of the real tokens, zero at padding), positions [L, d] -> [rows, L, d].

        The interests are never materialised: with pooling weights w_K, w_V [rows, t, s, k],
        q_t . K~_tk = sum_s w_K[t, s, k] (q_t . k_s) and sum_k p_tk V~_tk = sum_s (sum_k p_tk w_V[t, s, k]) v_s,
        so both parts are [L, L] mixing matrices over the per-position values (O(L^2 (d + h k)) per row
        instead of O(L^2 k d) for the [rows, L, k, d] interests)."""
        rows, length, width = grid.shape
        d = width // 3
        heads, dh = self.heads, d // self.heads
        q, k, v = grid.split(d, dim=-1)
        allowed = causal_key_mask(bucket.real)  # [rows, L, L]
        key_weights = self.key_pool.weights(k, allowed)  # [rows, L(t), L(s), n_interests]
        value_weights = self.value_pool.weights(v, allowed)
        q, k, v = (x.view(rows, length, heads, dh).transpose(1, 2) for x in (q, k, v))  # [rows, h, L, dh]
        pair_scores = (q @ k.transpose(-1, -2)) * dh**-0.5  # [rows, h, L(t), L(s)]
        item_scores = torch.einsum("bhts,btsk->bthk", pair_scores, key_weights)  # q_t . K~_tk / sqrt(dh)
        item_probs = self.attn_dropout(item_scores.softmax(-1))  # over the interests
        mixing = torch.einsum("bthk,btsk->bhts", item_probs, value_weights)

        pos_q, pos_k = self.pos_qk(self.pos_norm(positions)).view(length, 2, heads, dh).permute(1, 2, 0, 3)
        pos_scores = (pos_q @ pos_k.transpose(-1, -2)) * (2 * dh) ** -0.5  # [h, L, L]
        pos_scores = pos_scores.to(v.dtype).masked_fill(~allowed[:, None], float("-inf"))
        pos_probs = self.attn_dropout(pos_scores.softmax(-1))  # [rows, h, L, L], over the keys s <= t
        context = (mixing + pos_probs) @ v  # [rows, h, L, dh]
        return context.transpose(1, 2).reshape(rows, length, d)

    def forward(self, tokens: torch.Tensor, layout: SeqLayout, table: torch.Tensor) -> torch.Tensor:
        def mixer(grid: torch.Tensor, bucket: GridBucket) -> torch.Tensor:
            return self.mix(grid, bucket, table[table.shape[0] - bucket.length :])  # right-aligned positions

        return self.out(layout.mix(self.qkv(tokens), mixer, tokens.shape[-1]))


class LightTransformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attention = LightSelfAttention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.ffn = PointwiseFeedForward(cfg.hidden, 4 * cfg.hidden, "gelu", cfg.dropout, inner_dropout=False)
        self.ffn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, layout: SeqLayout, table: torch.Tensor) -> torch.Tensor:
        tokens = self.attn_norm(tokens + self.dropout(self.attention(tokens, layout, table)))
        return self.ffn_norm(tokens + self.dropout(self.ffn(tokens)))


@register_backbone("lightsans", options=LightsansOptions)
class LightSANs(Backbone):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        # row max_len - 1 is the most recent item (positions counted from the right, as LearnedPositions)
        self.positions = nn.Embedding(cfg.max_len, cfg.hidden)
        self.embed_dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(LightTransformerBlock(cfg) for _ in range(cfg.layers))
        self.apply(partial(init_normal_, std=cfg.init_std))  # leaves Theta (plain Parameters) at N(0, 1)

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        return self.embed_dropout(items)  # positions are decoupled: they enter each layer's attention

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens, layout, self.positions.weight)
        return tokens
