"""Methods: what a model does with items around its backbone, each registered by name in
faerec.models.registry.METHODS. Every module in this folder is imported here, so a new method is one new
module (docs/ARCHITECTURE.md)."""

from faerec.models.discovery import import_all

MODULES = import_all(__name__, __path__)
