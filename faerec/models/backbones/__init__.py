"""Sequence encoders sharing one interface (``Backbone``), each registered by name in
faerec.models.registry.BACKBONES. Every module in this folder is imported here, so a new backbone is one new
module (docs/ARCHITECTURE.md)."""

from faerec.models.backbones.base import Backbone, LearnedPositions
from faerec.models.discovery import import_all

MODULES = import_all(__name__, __path__, skip=("base",))

__all__ = ["Backbone", "LearnedPositions"]
