"""Typed flow parameters: the Prefect UI renders these models as forms with their defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from faerec.defaults import PIPELINE_EPOCHS, SAMPLE_SOURCE
from faerec.models import backbone_names, method_names

# Literals built from the registries: the Prefect UI offers every registered backbone and method by name
BackboneName = Literal[tuple(backbone_names())]  # type: ignore[valid-type]
MethodName = Literal[tuple(method_names())]  # type: ignore[valid-type]


class PipelineParams(BaseModel):
    """datasets x backbones x methods, and how to train them."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(
        default_factory=lambda: [SAMPLE_SOURCE],
        description="Sources: a registered source (amazon2014:Beauty, movielens:ml-1m, ...) or a catalogue "
        "folder relative to the project (data/sample is the bundled sample).",
    )
    encoder: str = Field("minilm", description="Text encoder: minilm (offline), openai:<model>, st:<path>, hf:<path>.")
    backbones: list[BackboneName] = Field(default_factory=lambda: ["sasrec"], description="Sequence backbones.")
    methods: list[MethodName] = Field(
        default_factory=lambda: ["base", "faerec"], description="Methods; base is the reference. Methods that "
        "read text embeddings get them embedded first."
    )
    epochs: int = Field(PIPELINE_EPOCHS, ge=1, description="Upper bound on epochs (early stopping may end sooner).")
    patience: int = Field(10, ge=1, description="Validations without improvement before stopping.")
    seed: int = 2024
    hidden: int = Field(128, ge=8, description="Hidden size; also the PCA dimension of the ID initialisation.")
    min_user_interactions: int = Field(5, ge=1)
    min_item_interactions: int = Field(5, ge=1)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="For in-process training.")
    train_on: Literal["local", "gpu-pool"] = Field(
        "local", description="local: train in this flow run (CPU or local CUDA); gpu-pool: hand each run to the "
        "`faerec-train/train` deployment on the gpu work pool.",
    )
    eval_protocol: Literal["novel", "repeat"] = Field(
        "novel", description="History mask of every ranking: novel masks the whole input history (a repeat "
        "target counts as a miss); repeat masks none (docs/PROTOCOL.md).")
    train_deployment: str = Field("faerec-train/train", description="Deployment used when train_on=gpu-pool.")
    parallel_training: bool = Field(
        False, description="Submit every training run to the flow's task runner at once, each in the runner's "
        "worker (for a Dask or Ray runner, or several local GPUs). Off: runs train on this machine as "
        "training_processes says.")
    training_processes: int = Field(
        0, ge=0, description="Local runs trained at once, each in its own process on its share of the CPU cores "
        "(0: as many as the runs, cores and memory allow; 1: one after another in this process, on every core). "
        "Runs on a GPU train one after another.")
    recommend_k: int = Field(
        0, ge=0, description="When > 0, export each run's top-K recommendations for every user "
        "(runs/<run>/recommendations.parquet, history excluded) and publish a sample as an artifact.")

    @field_validator("datasets", "backbones", "methods")
    @classmethod
    def _not_empty(cls, value: list) -> list:
        if not value:
            raise ValueError("needs at least one entry")
        return list(dict.fromkeys(value))  # drop repeats, keep order
