"""TrainConfig: everything a training run depends on, saved as runs/<run-id>/config.json.

Defaults follow docs/PROTOCOL.md: Adam lr 1e-3, batch 256, early stopping on validation NDCG@20 with patience 10,
seed 2024, MiniLM embeddings; the model's own defaults (hidden 128, 2 layers, max_len 50, ...) live in
faerec.models.ModelConfig, nested here as ``model``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from faerec.device import DEVICES, SIMILARITY_PRECISIONS
from faerec.errors import FaerecError
from faerec.models import ModelConfig

SELECT_METRICS = tuple(f"{m}@{k}" for m in ("ndcg", "hr") for k in (5, 10, 20))

# history masks of a ranking (docs/PROTOCOL.md, "Masking"); faerec.eval.ranking applies them
PROTOCOLS = ("novel", "repeat")
# fields that may change between a run and its resumption without changing the result's meaning
RESUMABLE_CHANGES = frozenset({"device", "eval_batch_size", "epochs", "patience"})


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 200  # an upper bound; early stopping normally ends the run first
    batch_size: int = 256
    lr: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    patience: int = 10  # validations without improvement before stopping
    select_metric: str = "ndcg@20"  # overall validation metric used for early stopping / model selection
    eval_every: int = 1  # validate every N epochs (and after the last one)
    eval_batch_size: int = 512  # users scored at once; 512 was faster than 1024 and peaks lower
    seed: int = 2024
    encoder: str = "minilm"  # which embeddings (faerec embed) the FAERec item embedder reads
    device: str = "auto"  # auto: CUDA when available, else CPU
    bf16: bool = False  # bfloat16 autocast for training forward passes (evaluation stays float32)
    # operands of the alignment losses' [U, U] similarity matmul: auto = bf16 where the device runs it natively
    # (faerec.device.resolve_similarity_precision); the choice a run made is in metrics.json "precision"
    similarity_precision: str = "auto"
    popularity: str = "train"  # head/tail definition of the reported metrics: "train" or the labelled "paper"
    eval_protocol: str = "novel"  # history mask of every ranking (docs/PROTOCOL.md): "novel" or "repeat"

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        for name in ("epochs", "batch_size", "patience", "eval_every", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise FaerecError(f"train config: {name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise FaerecError(f"train config: lr must be > 0, got {self.lr}")
        if self.select_metric not in SELECT_METRICS:
            raise FaerecError(f"train config: select_metric must be one of {list(SELECT_METRICS)}")
        if self.device not in DEVICES:
            raise FaerecError(f"train config: device must be one of {list(DEVICES)}, not {self.device!r}")
        if self.similarity_precision not in SIMILARITY_PRECISIONS:
            raise FaerecError(f"train config: similarity_precision must be one of {list(SIMILARITY_PRECISIONS)}, "
                              f"not {self.similarity_precision!r}")
        if self.popularity not in ("train", "paper"):
            raise FaerecError("train config: popularity must be 'train' or 'paper'")
        if self.eval_protocol not in PROTOCOLS:
            raise FaerecError(f"train config: eval_protocol must be one of {list(PROTOCOLS)}, "
                              f"not {self.eval_protocol!r}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["adam_betas"] = list(self.adam_betas)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FaerecError(f"train config: unknown field(s) {unknown}")
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level and model fields changed; model fields, backbone options and method options
        are recognised by name (faerec.models.ModelConfig.with_changes)."""
        own_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
        top = {k: v for k, v in changes.items() if k in own_fields}
        model_changes = {k: v for k, v in changes.items() if k not in own_fields}
        model = self.model.with_changes(**model_changes) if model_changes else self.model
        return dataclasses.replace(self, model=model, **top)

    def differences(self, other: TrainConfig) -> list[str]:
        """Names of fields (model fields as ``model.x``) whose values differ, except resumable ones."""
        mine, theirs = self.to_dict(), other.to_dict()
        diff = [k for k in mine if k != "model" and k not in RESUMABLE_CHANGES and mine[k] != theirs[k]]
        diff += [f"model.{k}" for k in mine["model"] if mine["model"][k] != theirs["model"].get(k)]
        return diff
