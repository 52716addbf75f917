"""Item embedders (the item side of a model), registered by method name in ``ITEM_EMBEDDERS``."""

from faerec.models.embedders import fusion, ids  # noqa: F401  (importing registers them)
from faerec.models.embedders.base import ITEM_EMBEDDERS, ItemEmbedder, TrainingTerms, register_embedder

__all__ = ["ITEM_EMBEDDERS", "ItemEmbedder", "TrainingTerms", "register_embedder"]
