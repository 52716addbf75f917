"""The backbone contract: a sequence encoder that owns its positional handling, and nothing of the item side.

An item embedder (faerec.models.item_side) turns item ids into vectors; it calls ``embed_positions`` on each
item stream it has (one for the base method, two for FAERec's gate), fuses them, and hands the fused
sequence to ``encode``. So "FAERec on backbone X" needs no fusion code in X.

Both methods take the batch's real tokens packed as [N, D] plus their ``SeqLayout`` (not a padded [B, L, D]
grid): position-wise layers then never compute on padding, which is most of a recommendation batch; each
backbone scatters to the grid only for its sequence-mixing step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from faerec.models.layers import SeqLayout

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig

class Backbone(nn.Module):
    """Works on the packed real tokens of a batch (see ``SeqLayout``): [N, D] in, [N, D] out."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.hidden = cfg.hidden
        self.max_len = cfg.max_len

    def embed_positions(self, items: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        """[N, D] item embeddings of the real tokens -> plus this backbone's position encoding, dropout."""
        raise NotImplementedError

    def encode(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        """[N, D] embedded tokens -> [N, D] hidden states. Causal: the state at position t depends on the
        items at positions <= t of the same row only; padding positions are never read."""
        raise NotImplementedError

    def encode_last(self, tokens: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        """[N, D] embedded tokens -> [B, D] hidden state at each row's last column (zeros where it is padding),
        i.e. ``layout.last(self.encode(tokens, layout))``. A backbone may override it to skip work that only
        the other positions need (scoring users needs nothing else)."""
        return layout.last(self.encode(tokens, layout))


class LearnedPositions(nn.Module):
    """Learned absolute positions counted from the RIGHT end: the most recent item (column L - 1) always
    gets index max_len - 1 whatever length the caller pads to (the usual scheme when L == max_len)."""

    def __init__(self, max_len: int, hidden: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.table = nn.Embedding(max_len, hidden)

    def forward(self, layout: SeqLayout) -> torch.Tensor:
        return self.table(layout.columns + (self.max_len - layout.length))  # [N, D]
