"""The two registries that drive the CLI, the pipeline's parameters, the embed-or-not decision, the
benchmarks and the contract tests: backbones (sequence encoders) and methods (what a model does with items).

A backbone or a method is one module that registers itself with a decorator and declares its own options as
a dataclass with defaults; dropping the module into faerec/models/backbones/ or faerec/models/methods/ is all
it takes (both packages import every module they hold). See docs/ARCHITECTURE.md, "Adding a backbone or a
method".

Option dataclasses hold only str / int / float / bool fields, so a ModelConfig stays JSON round-trippable;
they may define ``check(self, cfg)`` for rules that involve the shared fields (e.g. hidden % heads).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faerec.errors import FaerecError

if TYPE_CHECKING:
    from torch import nn

    from faerec.models.config import ModelConfig
    from faerec.models.inputs import ModelInputs


@dataclass
class NoOptions:
    """For a backbone or method without options of its own."""


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    cls: type  # a faerec.models.backbones.base.Backbone subclass, built as cls(cfg)
    options: type = NoOptions
    summary: str = ""


@dataclass(frozen=True)
class MethodSpec:
    """A method builds the whole model around a backbone: ``build(cfg, make_backbone, inputs)`` returns an
    ``nn.Module`` implementing faerec.models.interface.SequentialRecommender. ``make_backbone()`` makes a
    fresh backbone of the configured kind (a method may use two, as LLM-ESR's dual view does)."""

    name: str
    build: Callable[[ModelConfig, Callable[[], nn.Module], ModelInputs], nn.Module]
    options: type = NoOptions
    needs_text: bool = False  # reads the LLM item embeddings (faerec embed must have run)
    scores_new_items: bool = False  # can represent an item from its text alone (no trained ID row needed)
    summary: str = ""


BACKBONES: dict[str, BackboneSpec] = {}
METHODS: dict[str, MethodSpec] = {}


def register_backbone(name: str, options: type = NoOptions, summary: str = ""):
    """Class decorator: make a backbone available as ``ModelConfig(backbone=name)``."""

    def add(cls: type) -> type:
        _check_options(name, options)
        BACKBONES[name] = BackboneSpec(name, cls, options, summary or _first_line(cls.__module__))
        return cls

    return add


def register_method(name: str, *, options: type = NoOptions, needs_text: bool = False,
                    scores_new_items: bool = False, summary: str = ""):
    """Function decorator on the method's ``build(cfg, make_backbone, inputs)``."""

    def add(build: Callable) -> Callable:
        _check_options(name, options)
        METHODS[name] = MethodSpec(name, build, options, needs_text, scores_new_items,
                                   summary or _first_line(build.__module__))
        return build

    return add


def backbone_spec(name: str) -> BackboneSpec:
    _load()
    if name not in BACKBONES:
        raise FaerecError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


def method_spec(name: str) -> MethodSpec:
    _load()
    if name not in METHODS:
        raise FaerecError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]


def backbone_names() -> list[str]:
    _load()
    return list(BACKBONES)


def method_names() -> list[str]:
    _load()
    return list(METHODS)


def text_methods() -> list[str]:
    """Methods that read the LLM item embeddings: the pipeline embeds a dataset when one of them runs."""
    _load()
    return [name for name, spec in METHODS.items() if spec.needs_text]


def make_options(cls: type, values: Any, owner: str) -> Any:
    """An options instance from None (defaults), an instance, or a dict that may only name known fields."""
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise FaerecError(f"{owner} options must be a table of settings, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FaerecError(f"{owner}: unknown option(s) {unknown}; known: {sorted(known)}")
    return cls(**values)


def option_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _check_options(owner: str, options: type) -> None:
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"{owner}: options must be a dataclass, got {options!r}")
    for f in dataclasses.fields(options):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"{owner}: option {f.name!r} needs a default")


def _first_line(module: str) -> str:
    import sys

    doc = (sys.modules[module].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _load() -> None:
    """Import the backbone and method packages (each imports all of its modules, which registers them)."""
    import faerec.models.backbones  # noqa: F401
    import faerec.models.methods  # noqa: F401
