"""ModelConfig: the fields every model shares, plus the chosen backbone's and method's own options.

    ModelConfig(backbone="sasrec", method="faerec", hidden=128,
                backbone_options={"heads": 2}, method_options={"alpha": 0.2})
    ModelConfig.create(backbone="sasrec", method="faerec", heads=2, alpha=0.2)   # the same, flat names

Each backbone and method declares its options as a dataclass (faerec.models.registry); here they are nested
instances, so ``dataclasses.asdict(cfg)`` is plain JSON and ``ModelConfig.from_dict`` rebuilds it. Defaults
follow docs/PROTOCOL.md ("FAERec details").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from faerec.errors import FaerecError
from faerec.models.registry import backbone_spec, make_options, method_spec, option_names

# flat fields of configs written before options were nested, and where they live now (config.json migration)
_LEGACY_BACKBONE = {"heads": "sasrec", "lru_r_min": "lru", "lru_r_max": "lru"}
_LEGACY_METHOD = {"alpha", "temperature", "bt_lambda", "w_min", "w_max", "period", "fixed_w_item", "llm_dropout",
                  "gate_dropout", "gate", "item_align", "feat_align", "curriculum", "pop_grouping",
                  "train_targets"}


@dataclass
class ModelConfig:
    backbone: str = "sasrec"  # a name in faerec.models.registry.BACKBONES
    method: str = "base"  # a name in faerec.models.registry.METHODS
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.4  # embedding, attention-weight, residual and feed-forward dropout
    max_len: int = 50
    init_std: float = 0.02  # normal init of linear / embedding weights (as the authors' code base)
    layer_norm_eps: float = 1e-12
    backbone_options: Any = field(default=None)  # the backbone's options dataclass (dict accepted)
    method_options: Any = field(default=None)  # the method's options dataclass (dict accepted)

    def __post_init__(self) -> None:
        backbone, method = backbone_spec(self.backbone), method_spec(self.method)
        self.backbone_options = make_options(backbone.options, self.backbone_options, f"backbone {self.backbone!r}")
        self.method_options = make_options(method.options, self.method_options, f"method {self.method!r}")
        for name in ("hidden", "layers", "max_len"):
            if getattr(self, name) < 1:
                raise FaerecError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise FaerecError(f"model config: dropout must be in [0, 1), got {self.dropout}")
        for options in (self.backbone_options, self.method_options):
            check = getattr(options, "check", None)
            if check is not None:
                check(self)

    # --- construction from flat names -----------------------------------------------------------------
    @classmethod
    def create(cls, **flat: Any) -> ModelConfig:
        """Shared fields, backbone options and method options given by their plain names."""
        return cls().with_changes(**flat)

    def with_changes(self, **changes: Any) -> ModelConfig:
        """A copy with shared fields and option fields changed by name. Changing the backbone or the method
        starts from the new one's default options; naming an option that the chosen backbone or method does
        not have is an error that says who has it."""
        changes = dict(changes)
        shared = {f.name for f in fields(ModelConfig)} - {"backbone_options", "method_options"}
        backbone = changes.pop("backbone", self.backbone)
        method = changes.pop("method", self.method)
        b_opts = dataclasses.asdict(self.backbone_options) if backbone == self.backbone else {}
        m_opts = dataclasses.asdict(self.method_options) if method == self.method else {}
        b_names, m_names = option_names(backbone_spec(backbone).options), option_names(method_spec(method).options)
        top: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("backbone_options", "method_options"):
                (b_opts if key == "backbone_options" else m_opts).update(value or {})
            elif key in shared:
                top[key] = value
            elif key in m_names:
                m_opts[key] = value
            elif key in b_names:
                b_opts[key] = value
            else:
                raise FaerecError(f"unknown setting {key!r} for backbone {backbone!r} and method {method!r}"
                                  f"{_owners(key)}")
        return dataclasses.replace(self, backbone=backbone, method=method, backbone_options=b_opts,
                                   method_options=m_opts, **top)

    def flat(self) -> dict[str, Any]:
        """Shared fields and both option sets as one flat dict (for tables and run labels)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_options")}
        out.update(dataclasses.asdict(self.backbone_options))
        out.update(dataclasses.asdict(self.method_options))
        return out

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Rebuild from ``asdict`` output (or a flat config.json of an earlier version), naming unknown keys."""
        values = dict(values)
        known = {f.name for f in fields(cls)}
        legacy = {k: values.pop(k) for k in list(values) if k in _LEGACY_METHOD or k in _LEGACY_BACKBONE}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FaerecError(f"model config: unknown field(s) {unknown}")
        cfg = cls(**values)
        if legacy:  # keep only what belongs to this run's backbone and method
            names = option_names(backbone_spec(cfg.backbone).options) | option_names(method_spec(cfg.method).options)
            cfg = cfg.with_changes(**{k: v for k, v in legacy.items() if k in names})
        return cfg


def _owners(key: str) -> str:
    from faerec.models.registry import BACKBONES, METHODS

    owners = [f"backbone {n}" for n, s in BACKBONES.items() if key in option_names(s.options)]
    owners += [f"method {n}" for n, s in METHODS.items() if key in option_names(s.options)]
    return f" (it is an option of {', '.join(owners)})" if owners else ""
