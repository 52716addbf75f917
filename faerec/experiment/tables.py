"""The experiment's tables in the paper's layouts, each as Markdown and as records (Prefect table artifacts).

- main (table 2): rows backbone x row label, column blocks per dataset: overall and tail H@10 / N@10, each
  cell the mean ± std over seeds with the significance marker of the paired test against the reference;
  one "Impr." row per other row: the relative change of its mean over the reference's mean;
- significance: every paired test (both tests, both metrics, overall and tail);
- ablation (table 3): one table per dataset, rows the labels, column blocks per backbone;
- groups (figure 4 data): N@10 by the target's popularity group; coverage (table 5);
- sweeps (figure 3 data): overall H@10 per swept value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from faerec.data.split import GROUP_LABELS
from faerec.experiment.aggregate import Aggregate, Cell, Row
from faerec.experiment.spec import format_value
from faerec.report.markdown import fmt_metric, fmt_percent, md_table
from faerec.report.metrics import metric_label

TABLE_COLUMNS = (("overall", "hr@10"), ("overall", "ndcg@10"), ("tail", "hr@10"), ("tail", "ndcg@10"))
MARKER_NOTE = ("`*` p < 0.05, `**` p < 0.01: paired t-test against the reference row on per-user values "
               "(averaged over the seeds both rows have, paired by user; the Wilcoxon signed-rank p-values are in "
               "the significance table).")


@dataclass
class Table:
    key: str  # artifact key part, e.g. "main"
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    align: str | None = None
    extra: list[str] = field(default_factory=list)  # Markdown after the table

    def markdown(self) -> str:
        parts = [f"### {self.title}", ""]
        if self.note:
            parts += [self.note, ""]
        parts.append(md_table(self.headers, self.rows, align=self.align))
        parts += self.extra
        return "\n".join(parts) + "\n"

    def records(self) -> list[dict[str, str]]:
        names = _unique(self.headers)
        return [dict(zip(names, row, strict=True)) for row in self.rows]


def cell(c: Cell | None, marker: str = "") -> str:
    if c is None or c.mean is None:
        return "–"
    text = fmt_metric(c.mean)
    if c.std is not None:
        text += f" ± {fmt_metric(c.std)}"
    return text + marker


def _cell_of(agg: Aggregate, row: Row, part: str, metric: str) -> str:
    test = agg.test(row, part, metric)
    return cell(row.parts.get(part, {}).get(metric), test["marker"] if test else "")


def _column_label(part: str, metric: str) -> str:
    return f"{part.capitalize()} {metric_label(metric)}"


def _seeds_note(agg: Aggregate) -> str:
    counts = sorted({len(r.seeds) for r in agg.rows})
    seeds = " or ".join(str(c) for c in counts)
    return f"Mean ± sample std over {seeds} seed(s) (no ± with one seed)."


def main_table(agg: Aggregate) -> Table:
    datasets = agg.datasets
    headers = ["backbone", "row"]
    for dataset in datasets:
        prefix = f"{dataset} " if len(datasets) > 1 else ""
        headers += [prefix + _column_label(p, m) for p, m in TABLE_COLUMNS]
    rows: list[list[str]] = []
    for backbone in agg.backbones:
        labels = [label for label in agg.labels if any(agg.row(d, backbone, label) for d in datasets)]
        for label in labels:
            line = [backbone, label]
            for dataset in datasets:
                row = agg.row(dataset, backbone, label)
                line += ["–"] * 4 if row is None else [_cell_of(agg, row, p, m) for p, m in TABLE_COLUMNS]
            rows.append(line)
        for label in labels:
            if label == agg.reference:
                continue
            line, any_value = ["", f"Impr. {label} vs {agg.reference}"], False
            for dataset in datasets:
                row = agg.row(dataset, backbone, label)
                changes = [agg.improvement(row, p, m) if row else None for p, m in TABLE_COLUMNS]
                any_value |= any(c is not None for c in changes)
                line += [fmt_percent(c) for c in changes]
            if any_value:
                rows.append(line)
    note = _seeds_note(agg) + " Tail = items outside the top 20 % by training popularity."
    if agg.reference is not None:
        note += " Impr. = relative change of the mean over the reference row's mean. " + MARKER_NOTE
    return Table("main", f"Test results (paper table 2 layout){_dataset_title(datasets)}", headers, rows, note,
                 align="ll" + "r" * (len(headers) - 2))


def significance_table(agg: Aggregate) -> Table:
    headers = ["dataset", "backbone", "row", "vs", "metric", "seeds", "users", "mean", "reference mean",
               "difference", "t-test p", "Wilcoxon p", ""]
    rows = []
    for t in agg.tests:
        rows.append([t["dataset"], t["backbone"], t["label"], t["reference"], _column_label(t["part"], t["metric"]),
                     ",".join(str(s) for s in t.get("seeds", [])), str(t.get("n_users", 0)),
                     fmt_metric(t.get("mean")), fmt_metric(t.get("reference_mean")), _signed(t.get("diff")),
                     _p(t.get("t_p")), _p(t.get("w_p")), t.get("marker", "") or t.get("note", "")])
    note = ("Paired two-sided tests of each row against the reference on per-user metrics. Pairing: a user's value "
            "is averaged over the seeds both rows have, then the rows are paired by user (n = users). "
            "Tail rows use the users whose test target is a tail item.")
    return Table("significance", "Significance against the reference", headers, rows, note,
                 align="lllll" + "r" * 7 + "l")


def ablation_table(agg: Aggregate, dataset: str, labels: Sequence[str]) -> Table:
    backbones = [b for b in agg.backbones if any(agg.row(dataset, b, label) for label in labels)]
    headers = ["variant"]
    for backbone in backbones:
        prefix = f"{backbone} " if len(backbones) > 1 else ""
        headers += [prefix + _column_label(p, m) for p, m in TABLE_COLUMNS]
    rows = []
    for label in labels:
        line = [label]
        for backbone in backbones:
            row = agg.row(dataset, backbone, label)
            line += ["–"] * 4 if row is None else [_cell_of(agg, row, p, m) for p, m in TABLE_COLUMNS]
        rows.append(line)
    note = _seeds_note(agg)
    if agg.reference is not None:
        note += f" Markers: paired t-test against `{agg.reference}`. " + MARKER_NOTE
    return Table(f"ablation-{dataset}", f"Ablation (paper table 3 layout): {dataset}", headers, rows, note,
                 align="l" + "r" * (len(headers) - 1))


def groups_table(agg: Aggregate, metric: str = "ndcg@10") -> Table:
    headers = ["dataset", "backbone", "row", *GROUP_LABELS]
    rows = []
    for r in agg.rows:
        rows.append([r.dataset, r.backbone, r.label, *[cell(r.groups.get(g, {}).get(metric)) for g in GROUP_LABELS]])
    counts = []
    for dataset in agg.datasets:
        first = next(r for r in agg.rows if r.dataset == dataset)
        counts.append(f"{dataset}: " + ", ".join(f"{g}: {first.group_users.get(g, 0)}" for g in GROUP_LABELS))
    note = (f"Test {metric_label(metric)} by the training popularity of the user's test target (paper figure 4). "
            + _seeds_note(agg) + " Test users per group: " + "; ".join(counts) + ".")
    return Table("groups", f"Popularity groups: test {metric_label(metric)}", headers, rows, note,
                 align="lll" + "r" * len(GROUP_LABELS))


def coverage_table(agg: Aggregate) -> Table:
    keys = ("coverage@10", "tail_coverage@10", "coverage@20", "tail_coverage@20")
    headers = ["dataset", "backbone", "row", "Cov@10", "TCov@10", "Cov@20", "TCov@20"]
    rows = [[r.dataset, r.backbone, r.label, *[cell(r.coverage.get(k)) for k in keys]] for r in agg.rows]
    note = ("Coverage@K: distinct items in all users' top-K lists / items; Tail-Coverage@K the same for tail items "
            "(paper eq. 15, table 5; from each run's metrics.json). " + _seeds_note(agg))
    return Table("coverage", "Coverage (paper table 5 layout)", headers, rows, note, align="lll" + "r" * 4)


def sweep_table(agg: Aggregate, field_name: str, metric: str = "hr@10") -> Table:
    rows_of = [r for r in agg.rows if r.sweep and r.sweep[0] == field_name]
    values = list(dict.fromkeys(r.sweep[1] for r in rows_of))
    headers = ["dataset", "backbone", "row", *[format_value(v) for v in values]]
    lines = []
    for dataset, backbone, arm in dict.fromkeys((r.dataset, r.backbone, r.arm) for r in rows_of):
        line = [dataset, backbone, arm]
        for v in values:
            match = next((r for r in rows_of if (r.dataset, r.backbone, r.arm) == (dataset, backbone, arm)
                          and r.sweep[1] == v), None)
            line.append(cell(match.parts["overall"].get(metric)) if match else "–")
        lines.append(line)
    note = f"Overall test {metric_label(metric)} for each value of `{field_name}` (paper figure 3). " + _seeds_note(agg)
    return Table(f"sweep-{field_name.replace('_', '-')}", f"Sweep of {field_name}", headers, lines, note,
                 align="lll" + "r" * len(values))


def runs_table(entries: Sequence[dict[str, Any]]) -> Table:
    headers = ["dataset", "backbone", "row", "seed", "status", "best epoch", "epochs run", "run folder"]
    rows = [[str(e["dataset"]), str(e["backbone"]), str(e["label"]), str(e["seed"]), str(e.get("status", "")),
             str(e.get("best_epoch", "–")), str(e.get("epochs_run", "–")), f"`{e['run_dir']}`"] for e in entries]
    return Table("runs", "Runs", headers, rows, "One line per (row, seed); rows that name the same configuration "
                 "share a run folder (it is trained once).", align="llllrrrl")


def _dataset_title(datasets: Sequence[str]) -> str:
    return f": {datasets[0]}" if len(datasets) == 1 else ""


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.4f}"


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name or "marker"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out
