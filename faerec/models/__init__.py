"""Models: a method (base IDs, FAERec, ...) built around a backbone (SASRec, FMLP-Rec, LRURec, ...).

    from faerec.models import ModelConfig, build_model
    cfg = ModelConfig.create(backbone="sasrec", method="faerec", alpha=0.2)
    model = build_model(cfg, n_items, llm_table, pca_init, counts)
    loss, parts = model.training_loss(input_ids, pos_ids, neg_ids, epoch)
    scores = model.user_embedding(input_ids) @ model.item_table().T

Both kinds register themselves (faerec.models.registry); ``backbone_names()`` and ``method_names()`` list them.
"""

from faerec.models.backbones import Backbone
from faerec.models.config import ModelConfig
from faerec.models.interface import SequentialRecommender
from faerec.models.item_side import ItemEmbedder, SequentialModel
from faerec.models.recommender import build_model
from faerec.models.registry import (
    BACKBONES,
    METHODS,
    backbone_names,
    backbone_spec,
    method_names,
    method_spec,
    text_methods,
)

__all__ = [
    "BACKBONES",
    "METHODS",
    "Backbone",
    "ItemEmbedder",
    "ModelConfig",
    "SequentialModel",
    "SequentialRecommender",
    "backbone_names",
    "backbone_spec",
    "build_model",
    "method_names",
    "method_spec",
    "text_methods",
]
