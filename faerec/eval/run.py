"""`faerec evaluate RUN_DIR`: rebuild a finished run's model from config.json + best.pt and re-score it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from faerec.data.split import GROUP_LABELS, group_of
from faerec.device import describe
from faerec.eval.document import metrics_document, peak_memory_mb
from faerec.eval.evaluator import Evaluator, popularity_of
from faerec.io import write_json, write_parquet
from faerec.runs import folder
from faerec.runs.modelling import load_trained_run


def evaluate_run(
    run_dir: str | Path,
    dataset_dir: str | Path | None = None,
    device: str | None = None,
    protocol: str | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Re-run validation and test evaluation with the run's best weights; rewrites metrics.json.

    ``dataset_dir`` overrides the folder recorded in config.json (e.g. a run copied to another machine);
    ``device`` overrides the configured one; ``protocol`` the evaluation protocol (the weights are not
    re-selected). ``out`` writes the document there instead of RUN_DIR/metrics.json. Returns the document
    plus "run_dir".
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    trained = load_trained_run(run_dir, dataset_dir, device)
    cfg, dataset, model, torch_device = trained.cfg, trained.dataset, trained.model, trained.device
    if protocol is not None:
        cfg = cfg.replace(eval_protocol=protocol)

    evaluator = Evaluator(dataset, cfg.model.max_len, cfg.eval_batch_size, torch_device, cfg.popularity,
                          cfg.eval_protocol)
    valid = evaluator.evaluate(model, "valid")
    test = evaluator.evaluate(model, "test", also=("paper",))

    metrics_path = Path(out) if out is not None else run_dir / folder.METRICS
    write_user_ranks(evaluator, model, user_ranks_path(metrics_path))
    previous = _previous_metrics(run_dir)
    timing = dict(previous.get("timing", {}))
    timing["eval_seconds"] = test["seconds"]
    timing["evaluate_total_seconds"] = time.perf_counter() - started
    doc = metrics_document(dataset, cfg.model.backbone, cfg.model.method, cfg.seed, trained.best_epoch,
                           int(previous.get("epochs_run", trained.best_epoch)), valid, test, timing,
                           describe(torch_device), peak_memory_mb(torch_device), previous.get("stop_reason"))
    write_json(metrics_path, doc)
    return {**doc, "run_dir": str(run_dir)}


def user_ranks_path(metrics_path: Path) -> Path:
    """user_ranks.parquet beside RUN_DIR/metrics.json; ``<stem>.user_ranks.parquet`` beside any other document."""
    if metrics_path.name == folder.METRICS:
        return metrics_path.with_name(folder.USER_RANKS)
    return metrics_path.with_name(f"{metrics_path.stem}.{folder.USER_RANKS}")


def write_user_ranks(evaluator: Evaluator, model, path: Path) -> None:
    """One row per test user: the target, its 0-based rank (capped at the largest K, as in the metrics), the
    target's popularity group (null for a cold target), head flag and training count under the run's
    popularity mode, and whether the target repeats a history item. Significance tests pair these rows."""
    split = evaluator.split("test")
    ranks, _ = evaluator.rank(model, "test")
    popularity = popularity_of(evaluator.dataset, evaluator.popularity)
    targets = split.targets.numpy()
    counts = popularity.counts[targets]
    labels = [GROUP_LABELS[g] if g >= 0 else None for g in group_of(counts).tolist()]
    frame = pl.DataFrame({
        "user_idx": split.users.astype(np.int32), "item_idx": targets.astype(np.int32),
        "rank": ranks.astype(np.int32), "group": pl.Series(labels, dtype=pl.Utf8),
        "is_head": popularity.is_head[targets].astype(bool), "is_repeat": split.repeats.astype(bool),
        "train_count": counts.astype(np.int32),
    }).sort("user_idx")
    write_parquet(path, frame)


def _previous_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / folder.METRICS
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a damaged metrics.json is exactly what this command rewrites
