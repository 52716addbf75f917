"""A sequential recommender = a backbone (sequence encoder) + an item embedder, by composition."""

from __future__ import annotations

import torch
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones import BACKBONES, Backbone
from faerec.models.config import ModelConfig
from faerec.models.embedders import ITEM_EMBEDDERS, ItemEmbedder
from faerec.models.layers import SeqLayout
from faerec.models.losses import bce_loss


class SequentialModel(nn.Module):
    """Implements faerec.models.interface.SequentialRecommender."""

    def __init__(self, cfg: ModelConfig, backbone: Backbone, embedder: ItemEmbedder) -> None:
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
        self, input_ids: torch.Tensor, pos_ids: torch.Tensor, neg_ids: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        layout = self._layout(input_ids)
        scored = layout.tokens_of(pos_ids) != 0  # [N] real tokens with a target
        pos, neg = layout.tokens_of(pos_ids)[scored], layout.tokens_of(neg_ids)[scored]
        terms = self.embedder.training_terms(input_ids, layout, pos, neg, self.backbone, epoch)
        hidden = self.backbone.encode(terms.sequence, layout)[scored]  # [M, D]
        rec = bce_loss((hidden * terms.positives).sum(-1), (hidden * terms.negatives).sum(-1))
        total = rec + terms.auxiliary
        named = {"rec": rec, **terms.parts, "total": total}
        values = torch.stack([v.detach().float() for v in named.values()]).tolist()  # one device sync
        return total, dict(zip(named, values, strict=True))

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        layout = self._layout(input_ids)
        hidden = self.backbone.encode(self.embedder.sequence_input(input_ids, layout, self.backbone), layout)
        return layout.last(hidden)

    def item_table(self) -> torch.Tensor:
        return self.embedder.item_table()


def _check_table(name: str, table: torch.Tensor | None, rows: int, cols: int | None) -> None:
    if table is None:
        return
    if table.dim() != (1 if cols is None else 2) or table.shape[0] != rows or (cols and table.shape[1] != cols):
        want = f"[{rows}]" if cols is None else f"[{rows}, {cols or 'd'}]"
        raise FaerecError(f"{name} has shape {list(table.shape)}, expected {want} (n_items + 1 rows, row 0 = padding)")
    if table.is_floating_point() and not torch.isfinite(table).all():
        raise FaerecError(f"{name} contains NaN or infinite values")


def build_model(
    cfg: ModelConfig,
    n_items: int,
    llm_table: torch.Tensor | None,
    pca_init: torch.Tensor | None,
    train_count: torch.Tensor,
) -> SequentialModel:
    """Build ``cfg.backbone`` + ``cfg.method`` for items 1..n_items (0 = padding).

    llm_table: [n_items + 1, d_llm] frozen LLM embeddings, required by method "faerec", ignored by "base".
    pca_init: [n_items + 1, hidden] ID-embedding initialisation for "faerec"; None computes the PCA of
    llm_table here. train_count: [n_items + 1] training-part popularity (feature-alignment grouping).
    LLM table and counts are non-persistent buffers: not in ``state_dict()``; pass them again when rebuilding.
    """
    if n_items < 1:
        raise FaerecError(f"n_items must be >= 1, got {n_items}")
    _check_table("train_count", train_count, n_items + 1, None)
    if cfg.method == "faerec":
        if llm_table is None:
            raise FaerecError("method 'faerec' needs the LLM item embeddings (llm_table); run `faerec embed`")
        _check_table("llm_table", llm_table, n_items + 1, 0)
        _check_table("pca_init", pca_init, n_items + 1, cfg.hidden)
    backbone = BACKBONES[cfg.backbone](cfg)
    embedder = ITEM_EMBEDDERS[cfg.method](
        cfg, n_items, llm_table=llm_table, pca_init=pca_init, train_count=train_count
    )
    return SequentialModel(cfg, backbone, embedder)
