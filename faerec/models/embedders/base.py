"""The item-side contract: everything that turns item ids into vectors, for the sequence and for scoring."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from faerec.models.backbones import Backbone
from faerec.models.layers import SeqLayout

ITEM_EMBEDDERS: dict[str, type[ItemEmbedder]] = {}


def register_embedder(name: str):
    """Class decorator: make an item embedder available as ``ModelConfig(method=name)``."""

    def add(cls: type[ItemEmbedder]) -> type[ItemEmbedder]:
        ITEM_EMBEDDERS[name] = cls
        return cls

    return add


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
