"""The item-side contract and the usual composition: a backbone + an item embedder = a SequentialModel.

Most methods only change the item side (how ids become vectors, and which auxiliary losses they add), so
they build a ``SequentialModel`` around their ``ItemEmbedder``. A method that needs more (two sequence
encoders, losses across users) builds its own module implementing faerec.models.interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.layers import SeqLayout, take_where
from faerec.models.losses import bce_loss


@dataclass
class TrainingTerms:
    """What an item embedder contributes to one training batch."""

    sequence: torch.Tensor  # [N, D] backbone input at the N real tokens
    positives: torch.Tensor  # [M, D] target vectors of the M scored positive ids
    negatives: torch.Tensor  # [M, D] target vectors of the matching negative ids
    auxiliary: torch.Tensor  # scalar added to the recommendation loss (0 for the base method)
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # named scalars for logging


class ItemEmbedder(nn.Module):
    def sequence_input(self, input_ids: torch.Tensor, layout: SeqLayout, backbone: Backbone) -> torch.Tensor:
        """[B, L] ids -> [N, D] backbone input at the real tokens (positions via ``backbone.embed_positions``)."""
        raise NotImplementedError

    def training_terms(
        self,
        input_ids: torch.Tensor,
        layout: SeqLayout,
        pos_ids: torch.Tensor,
        neg_ids: torch.Tensor,
        backbone: Backbone,
        epoch: int,
    ) -> TrainingTerms:
        """input_ids: [B, L]; pos_ids, neg_ids: [M] the targets at the scored tokens (non-zero positives)."""
        raise NotImplementedError

    def item_table(self) -> torch.Tensor:
        """[n_items + 1, D] inference representation of every item; row 0 (padding) is zero."""
        raise NotImplementedError


class SequentialModel(nn.Module):
    """Implements faerec.models.interface.SequentialRecommender: backbone + item embedder, BCE loss."""

    def __init__(self, cfg, backbone: Backbone, embedder: ItemEmbedder) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.embedder = embedder

    def _layout(self, input_ids: torch.Tensor) -> SeqLayout:
        if input_ids.dim() != 2 or input_ids.shape[1] > self.cfg.max_len:
            raise FaerecError(f"input_ids must be [batch, length <= max_len={self.cfg.max_len}], "
                              f"got {list(input_ids.shape)}")
        return SeqLayout.from_ids(input_ids)

    def training_loss(
        self, input_ids: torch.Tensor, pos_ids: torch.Tensor, neg_ids: torch.Tensor, epoch: int,
        users: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        layout = self._layout(input_ids)
        scored = layout.tokens_of(pos_ids) != 0  # [N] real tokens with a target
        pos, neg = layout.tokens_of(pos_ids)[scored], layout.tokens_of(neg_ids)[scored]  # ids: no gradient
        terms = self.embedder.training_terms(input_ids, layout, pos, neg, self.backbone, epoch)
        hidden = take_where(self.backbone.encode(terms.sequence, layout), scored)  # [M, D]
        rec = bce_loss((hidden * terms.positives).sum(-1), (hidden * terms.negatives).sum(-1))
        total = rec + terms.auxiliary
        named = {"rec": rec, **terms.parts, "total": total}
        return total, loss_parts(named)

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        layout = self._layout(input_ids)
        return self.backbone.encode_last(self.embedder.sequence_input(input_ids, layout, self.backbone), layout)

    def item_table(self) -> torch.Tensor:
        return self.embedder.item_table()

    def sequence_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, L, D] hidden states at every position (zeros at padding), for inspection and the tests."""
        layout = self._layout(input_ids)
        tokens = self.backbone.encode(self.embedder.sequence_input(input_ids, layout, self.backbone), layout)
        return packed_to_grid(tokens, layout, input_ids.shape)


def packed_to_grid(tokens: torch.Tensor, layout: SeqLayout, shape: torch.Size) -> torch.Tensor:
    """[N, D] packed real tokens -> [B, L, D] with zeros at padding."""
    grid = tokens.new_zeros(shape[0] * shape[1], tokens.shape[-1])
    grid[layout.flat_index] = tokens
    return grid.view(shape[0], shape[1], -1)


def loss_parts(named: dict[str, torch.Tensor]) -> dict[str, float]:
    """Named scalar tensors -> floats with one device sync."""
    values = torch.stack([v.detach().float() for v in named.values()]).tolist()
    return dict(zip(named, values, strict=True))
