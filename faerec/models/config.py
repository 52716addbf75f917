"""ModelConfig: every hyperparameter of a backbone + item embedder, as a plain JSON-serialisable dataclass.

The trainer saves ``dataclasses.asdict(cfg)`` into config.json and rebuilds with ``ModelConfig(**saved)``,
so every field is a str / int / float / bool. Defaults follow PROTOCOL.md ("FAERec details").
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from faerec.errors import FaerecError

METHODS = ("base", "faerec")
TRAIN_TARGETS = ("id", "fused")


@dataclass
class ModelConfig:
    # --- backbone (sequence encoder) -------------------------------------------------------------------
    backbone: str = "sasrec"  # a key of faerec.models.BACKBONES
    method: str = "base"  # "base": plain ID embeddings; "faerec": the FAERec item embedder
    hidden: int = 128
    layers: int = 2
    heads: int = 2  # attention heads (SASRec only)
    dropout: float = 0.4  # embedding, attention-weight, residual and feed-forward dropout
    max_len: int = 50
    init_std: float = 0.02  # normal init of linear / embedding weights (as the authors' code base)
    layer_norm_eps: float = 1e-12
    lru_r_min: float = 0.8  # LRURec ring initialisation of |lambda|
    lru_r_max: float = 0.99
    # --- FAERec item embedder ------------------------------------------------------------------------
    alpha: float = 0.2  # weight of the alignment loss (paper eq. 14)
    temperature: float = 0.05  # InfoNCE temperature (eq. 5)
    bt_lambda: float = 0.005  # Barlow Twins off-diagonal weight (eq. 9)
    w_min: float = 0.9  # curriculum bounds and period (eq. 11)
    w_max: float = 1.0
    period: float = 30.0
    fixed_w_item: float = 0.5  # w_item when curriculum=False (ablation "w/o CLS"); w_feat = 1 - w_item
    llm_dropout: float = 0.3  # dropout inside the LLM projection MLP
    gate_dropout: float = 0.1  # dropout inside the gate MLP
    # ablation switches (paper table 3)
    gate: bool = True  # AGF; False: equal-weight fusion (g = 1/2)
    item_align: bool = True  # ILA
    feat_align: bool = True  # FLA
    curriculum: bool = True  # CLS; False: fixed weights (fixed_w_item, 1 - fixed_w_item)
    pop_grouping: bool = True  # PG; False: one Barlow Twins term over all batch items
    # which item representation the training logits use: "id" (the authors' code) or "fused" (the inference
    # representation LayerNorm(ID + projected LLM))
    train_targets: str = "id"

    def __post_init__(self) -> None:
        from faerec.models.backbones import BACKBONES  # late import: backbones import this module

        if self.backbone not in BACKBONES:
            raise FaerecError(f"unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONES)}")
        if self.method not in METHODS:
            raise FaerecError(f"unknown method {self.method!r}; choose one of {list(METHODS)}")
        if self.train_targets not in TRAIN_TARGETS:
            raise FaerecError(f"train_targets must be one of {list(TRAIN_TARGETS)}, not {self.train_targets!r}")
        for name in ("hidden", "layers", "heads", "max_len"):
            if getattr(self, name) < 1:
                raise FaerecError(f"model config: {name} must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise FaerecError(f"model config: hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        for name in ("dropout", "llm_dropout", "gate_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise FaerecError(f"model config: {name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 < self.lru_r_min < self.lru_r_max < 1.0:
            raise FaerecError("model config: need 0 < lru_r_min < lru_r_max < 1")
        if self.temperature <= 0 or self.period <= 0:
            raise FaerecError("model config: temperature and period must be > 0")
        if not 0.0 <= self.w_min <= self.w_max <= 1.0 or not 0.0 <= self.fixed_w_item <= 1.0:
            raise FaerecError("model config: need 0 <= w_min <= w_max <= 1 and 0 <= fixed_w_item <= 1")

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Rebuild from ``asdict`` output, naming any key this version does not know."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FaerecError(f"model config: unknown field(s) {unknown}")
        return cls(**values)
