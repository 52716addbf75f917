"""Sequence encoders sharing one interface (``Backbone``), registered by name in ``BACKBONES``."""

from faerec.models.backbones import fmlp, lru, sasrec  # noqa: F401  (importing registers them)
from faerec.models.backbones.base import BACKBONES, Backbone, register_backbone

__all__ = ["BACKBONES", "Backbone", "register_backbone"]
