"""The run folder (runs/<run-id>/): its file names, its id, where it lives, and reading what it holds.

    config.json    dataset folder, TrainConfig, and the exact item embeddings it was trained with
    checkpoint.pt  after every epoch (faerec.runs.checkpoint); the only file a resume trusts
    best.pt        {"epoch", "model"}: the best-validation weights
    history.jsonl  one line per epoch                  metrics.json  docs/CONTRACT.md; written last
    user_ranks.parquet  per-user test ranks (user, target, rank, group), for significance tests

The run id is ``<dataset>-<backbone>-<method>-s<seed>-c<hash>``; the hash covers every setting a resumed run
may not change (faerec.runs.config.RESUMABLE_CHANGES), so two configurations never share a folder. The root
is $FAEREC_RUNS_DIR, else ./runs, for the CLI and the flows alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from faerec.errors import FaerecError
from faerec.hashing import digest
from faerec.runs.config import RESUMABLE_CHANGES, TrainConfig

CONFIG = "config.json"
HISTORY = "history.jsonl"
METRICS = "metrics.json"
USER_RANKS = "user_ranks.parquet"


def runs_root() -> Path:
    return Path(os.environ.get("FAEREC_RUNS_DIR", "runs"))


# Method options added after run ids were first handed out, with their defaults. An option at its default is
# left out of the hash, so a run trained before the option existed keeps its folder; any other value is hashed.
LATER_OPTIONS: dict[tuple[str, str], Any] = {("faerec", "id_only"): False}
# The same for TrainConfig fields.
LATER_FIELDS: dict[str, Any] = {"similarity_precision": "auto"}


def config_hash(config: dict[str, Any] | TrainConfig) -> str:
    """8 hex digits over the train config without the fields a resumed run may change."""
    values = config.to_dict() if isinstance(config, TrainConfig) else config
    values = {k: v for k, v in values.items()
              if k not in RESUMABLE_CHANGES and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
    model = values.get("model")
    if isinstance(model, dict) and isinstance(model.get("method_options"), dict):
        options = model["method_options"]
        later = {name for (method, name), default in LATER_OPTIONS.items()
                 if method == model.get("method") and name in options and options[name] == default}
        if later:
            values["model"] = {**model, "method_options": {k: v for k, v in options.items() if k not in later}}
    return digest(values, length=8)


def run_id(dataset_id: str, cfg: TrainConfig) -> str:
    return f"{dataset_id}-{cfg.model.backbone}-{cfg.model.method}-s{cfg.seed}-c{config_hash(cfg)}"


def default_run_dir(dataset_id: str, cfg: TrainConfig) -> Path:
    return runs_root() / run_id(dataset_id, cfg)


def read_config_file(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FaerecError("no config.json: not a training run folder", path=Path(run_dir)) from None
    except json.JSONDecodeError as exc:
        raise FaerecError(f"unreadable run config ({exc})", path=path) from None


def read_config(run_dir: str | Path) -> tuple[Path, TrainConfig]:
    """(dataset folder, TrainConfig) saved in ``run_dir``/config.json."""
    saved = read_config_file(run_dir)
    try:
        return Path(saved["dataset_dir"]), TrainConfig.from_dict(saved["train"])
    except (KeyError, TypeError) as exc:
        raise FaerecError(f"unreadable run config ({type(exc).__name__}: {exc})", path=Path(run_dir) / CONFIG) from None


def recorded_embeddings(run_dir: str | Path) -> dict[str, str] | None:
    """{"encoder", "fingerprint", "table_digest"} of the LLM table the run was trained with; None for a
    method without text (or a run from before this was recorded)."""
    return read_config_file(run_dir).get("embeddings")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / METRICS
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FaerecError("no metrics.json: the run has not finished", path=Path(run_dir)) from None
    except json.JSONDecodeError as exc:
        raise FaerecError(f"unreadable metrics.json ({exc})", path=path) from None


def summary(metrics: dict, seconds: float) -> dict:
    """The one-line JSON summary of train / evaluate: where the run is and its headline test numbers."""
    test = metrics["test"]
    return {
        "run_dir": metrics["run_dir"], "dataset": metrics["dataset"], "backbone": metrics["backbone"],
        "method": metrics["method"], "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
        "protocol": test.get("protocol", "novel"),
        "test_hr@10": test["overall"]["hr@10"], "test_ndcg@10": test["overall"]["ndcg@10"],
        "tail_hr@10": test["tail"]["hr@10"], "tail_ndcg@10": test["tail"]["ndcg@10"],
        "seconds": round(seconds, 2),
    }
