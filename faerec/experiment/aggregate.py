"""Aggregate an experiment's runs over seeds, from their per-user results (user_ranks.parquet).

A run entry is a dict: ``label`` (the table row: a method, a variant, or either with a sweep point), ``arm``
(the row without the sweep point), ``method``, ``dataset``, ``backbone``, ``seed``, ``sweep`` (None or
``[field, value]``) and ``run_dir``. Every HR/NDCG value is recomputed from the run's user ranks (the same
formulas as faerec.eval.metrics, so a run's value equals its metrics.json); coverage needs every user's
top-K list, which only metrics.json has, so it is read from there.

Over seeds a row reports the mean and the sample standard deviation (ddof 1; None with one seed). "Impr." is
the paper's relative change of the row's mean over the reference row's mean, (mean - ref) / ref. The paired
tests are in faerec.experiment.stats.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from faerec.data.split import GROUP_LABELS
from faerec.eval.metrics import KS, hit_and_ndcg
from faerec.experiment import stats
from faerec.report.markdown import relative_change
from faerec.runs import folder

PARTS = ("overall", "head", "tail")
METRICS = tuple(f"{m}@{k}" for k in KS for m in ("hr", "ndcg"))
COVERAGE_KEYS = ("coverage@10", "tail_coverage@10", "coverage@20", "tail_coverage@20")


@dataclass
class Cell:
    """One metric of one row over seeds."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "values": self.values}


@dataclass
class Row:
    dataset: str
    backbone: str
    label: str
    arm: str
    method: str
    sweep: tuple[str, Any] | None
    entries: list[dict[str, Any]] = field(default_factory=list)  # one per seed
    parts: dict[str, dict[str, Cell]] = field(default_factory=dict)  # part -> metric -> Cell
    groups: dict[str, dict[str, Cell]] = field(default_factory=dict)  # popularity group -> metric -> Cell
    group_users: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, Cell] = field(default_factory=dict)
    protocol: str = "novel"
    n_users: int = 0
    n_repeat_targets: int = 0

    @property
    def seeds(self) -> list[int]:
        return [int(e["seed"]) for e in self.entries]

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dataset, self.backbone, self.label

    def value(self, part: str, metric: str) -> float | None:
        cell = self.parts.get(part, {}).get(metric)
        return cell.mean if cell is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "backbone": self.backbone, "label": self.label, "arm": self.arm,
            "method": self.method, "sweep": list(self.sweep) if self.sweep else None, "seeds": self.seeds,
            "runs": [str(e["run_dir"]) for e in self.entries], "protocol": self.protocol, "n_users": self.n_users,
            "n_repeat_targets": self.n_repeat_targets,
            "metrics": {p: {m: c.to_dict() for m, c in cells.items()} for p, cells in self.parts.items()},
            "groups": {g: {m: c.to_dict() for m, c in cells.items()} for g, cells in self.groups.items()},
            "group_users": self.group_users,
            "coverage": {k: c.to_dict() for k, c in self.coverage.items()},
        }


@dataclass
class Aggregate:
    rows: list[Row]
    reference: str | None
    tests: list[dict[str, Any]]

    def row(self, dataset: str, backbone: str, label: str) -> Row | None:
        return next((r for r in self.rows if r.key == (dataset, backbone, label)), None)

    def reference_row(self, row: Row) -> Row | None:
        if self.reference is None:
            return None
        return self.row(row.dataset, row.backbone, self.reference)

    def improvement(self, row: Row, part: str, metric: str) -> float | None:
        ref = self.reference_row(row)
        if ref is None or ref is row:
            return None
        return relative_change(row.value(part, metric), ref.value(part, metric))

    def test(self, row: Row, part: str, metric: str) -> dict[str, Any] | None:
        return next((t for t in self.tests if (t["dataset"], t["backbone"], t["label"]) == row.key
                     and t["part"] == part and t["metric"] == metric), None)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r.dataset for r in self.rows))

    @property
    def backbones(self) -> list[str]:
        return list(dict.fromkeys(r.backbone for r in self.rows))

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.label for r in self.rows))

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "rows": [r.to_dict() for r in self.rows], "tests": self.tests}


def run_values(frame: pl.DataFrame) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, float | None]],
                                            dict[str, int]]:
    """(part -> metric -> value, group -> metric -> value, group -> users) of one run's user ranks."""
    ranks = frame["rank"].to_numpy().astype(np.int64)
    parts = {part: hit_and_ndcg(ranks[stats.part_mask(frame, part)]) for part in PARTS}
    group = frame["group"].to_numpy()
    groups, users = {}, {}
    for label in GROUP_LABELS:
        mask = group == label
        groups[label] = hit_and_ndcg(ranks[mask])
        users[label] = int(mask.sum())
    return parts, groups, users


def aggregate(entries: Sequence[dict[str, Any]], reference: str | None = "base") -> Aggregate:
    """Rows (in first-appearance order) with their cells over seeds, and the paired tests against ``reference``."""
    rows: dict[tuple[str, str, str], Row] = {}
    frames: dict[tuple[str, str, str], dict[int, pl.DataFrame]] = {}
    for e in entries:
        key = (str(e["dataset"]), str(e["backbone"]), str(e["label"]))
        sweep = tuple(e["sweep"]) if e.get("sweep") else None
        row = rows.setdefault(key, Row(*key, arm=str(e.get("arm", e["label"])), method=str(e["method"]),
                                       sweep=sweep))
        if int(e["seed"]) in row.seeds:
            continue  # the same run listed twice
        row.entries.append(e)
        frames.setdefault(key, {})[int(e["seed"])] = stats.read_user_ranks(e["run_dir"])
    for key, row in rows.items():
        _fill(row, frames[key])
    tests = []
    if reference is not None:
        for key, row in rows.items():
            ref_key = (row.dataset, row.backbone, reference)
            if row.label == reference or ref_key not in rows:
                continue
            for part in stats.TEST_PARTS:
                for metric in stats.TEST_METRICS:
                    result = stats.compare(frames[key], frames[ref_key], metric, part)
                    tests.append({"dataset": row.dataset, "backbone": row.backbone, "label": row.label,
                                  "reference": reference, "part": part, "metric": metric, **result})
    return Aggregate(list(rows.values()), reference if any(r.label == reference for r in rows.values()) else None,
                     tests)


def _fill(row: Row, frames: dict[int, pl.DataFrame]) -> None:
    per_seed = []
    for entry in row.entries:
        frame = frames[int(entry["seed"])]
        per_seed.append(run_values(frame))
        row.n_users = frame.height
        row.n_repeat_targets = int(frame["is_repeat"].sum())
        doc = _metrics(entry["run_dir"])
        row.protocol = str(doc.get("protocol") or (doc.get("test") or {}).get("protocol") or "novel")
        for key in COVERAGE_KEYS:
            value = (doc.get("test") or {}).get(key)
            if value is not None:
                row.coverage.setdefault(key, Cell([])).values.append(float(value))
    row.parts = {p: {m: Cell([v for v in (s[0][p][m] for s in per_seed) if v is not None]) for m in METRICS}
                 for p in PARTS}
    row.groups = {g: {m: Cell([v for v in (s[1][g][m] for s in per_seed) if v is not None]) for m in METRICS}
                  for g in GROUP_LABELS}
    row.group_users = per_seed[-1][2] if per_seed else {}


def _metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / folder.METRICS
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def mean_documents(agg: Aggregate, metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """metrics.json-shaped dicts holding each row's means (``method`` = the row label), for faerec.report's
    tables (e.g. the terminal table, faerec.report.metrics_table_text)."""
    docs = []
    for row in agg.rows:
        test = {p: {m: row.value(p, m) for m in metrics} for p in PARTS}
        test.update(protocol=row.protocol, n_repeat_targets=row.n_repeat_targets)
        docs.append({"dataset": row.dataset, "backbone": row.backbone, "method": row.label, "seeds": row.seeds,
                     "test": test})
    return docs
