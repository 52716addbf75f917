"""Training curves: per-epoch loss and validation NDCG from a run's history.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faerec.errors import FaerecError
from faerec.report.markdown import fmt_metric, md_table

CURVE_METRICS = ("ndcg@10", "ndcg@20")
# Per-epoch means the trainer records: total loss, its BCE part, FAERec's alignment terms and the curriculum
# weight of the item-level term; any other field named "*loss*" is shown too.
LOSS_FIELDS = ("loss", "rec", "item_align", "feat_align", "w_item")


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Read history.jsonl (one JSON object per epoch); a missing file is an empty history."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise FaerecError(f"not a JSON line ({exc.msg})", path=path, line=number) from exc
    return records


def curve_points(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalise history records to {epoch, losses: {name: value}, valid: {metric: value}, seconds}.

    Loss fields are LOSS_FIELDS and other numbers whose name contains "loss"; validation metrics are read from
    ``valid.overall`` (the metrics.json shape) or ``valid`` itself, so both record layouts work.
    """
    points = []
    for i, record in enumerate(history):
        losses = {k: float(v) for k, v in record.items()
                  if (k in LOSS_FIELDS or "loss" in k) and isinstance(v, (int, float)) and not isinstance(v, bool)}
        valid = record.get("valid") or {}
        if isinstance(valid.get("overall"), dict):
            valid = valid["overall"]
        points.append({
            "epoch": int(record.get("epoch", i + 1)),
            "losses": losses,
            "valid": {m: float(valid[m]) for m in CURVE_METRICS if isinstance(valid.get(m), (int, float))},
            "seconds": record.get("train_seconds", record.get("seconds")),
        })
    return points


def training_curve_markdown(history: list[dict[str, Any]], title: str, best_epoch: int | None = None) -> str:
    points = curve_points(history)
    if not points:
        return f"### Training curve: {title}\nNo epochs recorded.\n"
    loss_names = sorted({name for p in points for name in p["losses"]}, key=_loss_order)
    metric_names = [m for m in CURVE_METRICS if any(m in p["valid"] for p in points)]
    headers = ["epoch", *loss_names, *[f"valid {m.upper()}" for m in metric_names], "train s"]
    rows = []
    for p in points:
        mark = " *" if best_epoch is not None and p["epoch"] == best_epoch else ""
        seconds = p["seconds"]
        rows.append([f"{p['epoch']}{mark}", *[fmt_metric(p["losses"].get(n)) for n in loss_names],
                     *[fmt_metric(p["valid"].get(m)) for m in metric_names],
                     f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "–"])
    note = "(* = best epoch by validation, the checkpoint that is tested)" if best_epoch is not None else ""
    return (f"### Training curve: {title}\n{note}\n\n"
            + md_table(headers, rows, align="r" * len(headers)) + "\n")


def _loss_order(name: str) -> tuple[int, str]:
    return (LOSS_FIELDS.index(name) if name in LOSS_FIELDS else len(LOSS_FIELDS), name)
