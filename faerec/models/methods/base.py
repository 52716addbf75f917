"""The base method: one trainable ID embedding per item, used both as the backbone's input and as the scoring
target (the backbone's own paper, e.g. SASRec). Uses nothing of the text side."""

from __future__ import annotations

import torch
from torch import nn

from faerec.models.backbones.base import Backbone
from faerec.models.item_side import ItemEmbedder, SequentialModel, TrainingTerms
from faerec.models.layers import SeqLayout
from faerec.models.registry import register_method


class IdItemEmbedder(ItemEmbedder):
    def __init__(self, cfg, n_items: int) -> None:
        super().__init__()
        # padding_idx: row 0 stays zero (it is initialised to zero and never receives a gradient)
        self.id_embedding = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)
        nn.init.normal_(self.id_embedding.weight, std=cfg.init_std)
        with torch.no_grad():
            self.id_embedding.weight[0].zero_()
        self.input_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def sequence_input(self, input_ids: torch.Tensor, layout: SeqLayout, backbone: Backbone) -> torch.Tensor:
        items = self.id_embedding(layout.tokens_of(input_ids))
        return self.input_norm(backbone.embed_positions(items, layout))

    def training_terms(self, input_ids, layout, pos_ids, neg_ids, backbone, epoch) -> TrainingTerms:
        return TrainingTerms(
            sequence=self.sequence_input(input_ids, layout, backbone),
            positives=self.id_embedding(pos_ids),
            negatives=self.id_embedding(neg_ids),
            auxiliary=self.id_embedding.weight.new_zeros(()),
        )

    def item_table(self) -> torch.Tensor:
        return self.id_embedding.weight


@register_method("base", summary="plain ID embeddings (the backbone's own paper)")
def build(cfg, make_backbone, inputs) -> SequentialModel:
    backbone = make_backbone()
    return SequentialModel(cfg, backbone, IdItemEmbedder(cfg, inputs.n_items))
