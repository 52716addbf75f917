"""Models: backbones (SASRec, FMLP-Rec, LRURec) x item embedders (base IDs, FAERec), composed by build_model.

    from faerec.models import ModelConfig, build_model
    model = build_model(ModelConfig(backbone="sasrec", method="faerec"), n_items, llm_table, pca_init, counts)
    loss, parts = model.training_loss(input_ids, pos_ids, neg_ids, epoch)
    scores = model.user_embedding(input_ids) @ model.item_table().T
"""

from faerec.models.backbones import BACKBONES, Backbone
from faerec.models.config import ModelConfig
from faerec.models.embedders import ITEM_EMBEDDERS, ItemEmbedder
from faerec.models.interface import SequentialRecommender
from faerec.models.recommender import SequentialModel, build_model

__all__ = [
    "BACKBONES",
    "ITEM_EMBEDDERS",
    "Backbone",
    "ItemEmbedder",
    "ModelConfig",
    "SequentialModel",
    "SequentialRecommender",
    "build_model",
]
