"""NARM (Li et al., CIKM 2017, "Neural Attentive Session-based Recommendation"): a GRU encoder read two ways.

The global encoder is the GRU's hidden state h_t itself; the local encoder is an (unnormalised) attention
over the hidden states with h_t as the query, alpha_tj = v^T sigmoid(A1 h_t + A2 h_j), c_local = sum_j
alpha_tj h_j. The two are concatenated, c_t = [c_global; c_local], and decoded by the paper's bilinear map
B: here ``Linear(2d -> d)``, so score(item) = e_item^T B c_t is the dot product of the backbone output with
the item table, as for every backbone. Reference code read (not copied): RecBole's
``recbole/model/sequential_recommender/narm.py`` (RUCAIBox/RecBole).

Deviations from the paper and from RecBole, and why:

- Causal at every position. The paper and RecBole encode a session once, with the LAST hidden state as the
  query over ALL hidden states, and score only the next item after the session. This package trains with
  next-item targets at every position, so the output at position t must use items <= t only: the attention
  for position t uses the query h_t over h_1..h_t (a causal [L, L] mask on the pairwise scores), and its
  global part is h_t. At the last position this is exactly the paper's NARM.
- Packed-token interface (``SeqLayout``). The GRU and the attention run per length bucket on a zero-padded
  grid; rows are left-padded. The GRU has no biases (as RecBole's), so with a zero initial state a zero
  padding input keeps the state exactly zero: left padding changes no hidden state, and padded positions are
  also masked out of the attention.
- One dropout rate. The paper uses 0.25 on the item embeddings and 0.5 before the decoder (RecBole's
  ``dropout_probs``); here both are ``cfg.dropout``. GRU layers are ``cfg.layers`` (the paper uses one).
- Embedding size = hidden size (RecBole allows them to differ); there are no position embeddings (the
  recurrence is ordered), so ``embed_positions`` only applies the embedding dropout.
- Order of the concatenation is the paper's [c_global; c_local] (RecBole concatenates [c_local; c_global];
  the two differ only by a permutation of B's columns).
- Initialisation: A1, A2, v and B are Xavier-normal as in RecBole; the GRU keeps PyTorch's default init; the
  item embeddings belong to the method (faerec.models.methods) and are initialised there.
- Loss: the method's BCE with one sampled negative per position, not RecBole's BPR / full cross-entropy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from faerec.models.backbones.base import Backbone
from faerec.models.layers import Dropout, GridBucket, SeqLayout
from faerec.models.registry import register_backbone

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


def causal_pair_mask(real: torch.Tensor) -> torch.Tensor:
    """bool [B, L] -> bool [B, L(query t), L(memory j)]: True where j <= t and position j is real."""
    length = real.shape[1]
    idx = torch.arange(length, device=real.device)
    return (idx[None, :] <= idx[:, None]) & real[:, None, :]


@register_backbone("narm")
class NARM(Backbone):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        d = cfg.hidden
        self.embed_dropout = Dropout(cfg.dropout)
        self.gru = nn.GRU(d, d, num_layers=cfg.layers, bias=False, batch_first=True)
        self.query_proj = nn.Linear(d, d, bias=False)  # A1, applied to the query h_t
        self.memory_proj = nn.Linear(d, d, bias=False)  # A2, applied to each attended state h_j
        self.score = nn.Linear(d, 1, bias=False)  # v
        self.context_dropout = Dropout(cfg.dropout)
        self.decoder = nn.Linear(2 * d, d, bias=False)  # B
        for layer in (self.query_proj, self.memory_proj, self.score, self.decoder):
            nn.init.xavier_normal_(layer.weight)

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        return self.embed_dropout(items)

    def attention_weights(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """[B, L, D] GRU states, bool [B, L] -> [B, L, L] alpha[b, t, j] = v^T sigmoid(A1 h_t + A2 h_j) for
        real j <= t, else 0 (not normalised, as in the paper)."""
        query = self.query_proj(states)  # [B, L, D]
        memory = self.memory_proj(states)
        alpha = self.score(torch.sigmoid(query[:, :, None, :] + memory[:, None, :, :])).squeeze(-1)
        return alpha * causal_pair_mask(real).to(alpha.dtype)

    def _encode_grid(self, grid: torch.Tensor, bucket: GridBucket) -> torch.Tensor:
        """[rows, L, D] zero-padded inputs -> [rows, L, 2D] (c_global | c_local) at every position."""
        states, _ = self.gru(grid)
        local = self.attention_weights(states, bucket.real) @ states
        return torch.cat([states, local], dim=-1)

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        context = layout.mix(tokens, self._encode_grid, 2 * tokens.shape[-1])
        return self.decoder(self.context_dropout(context))
