"""The experiment's report folder, runs/<experiment>/report/: report.md, every table as Markdown and CSV,
summary.json (all aggregates and tests) and the PNGs. The Prefect flow publishes the same objects as
artifacts; the CLI prints the main table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from faerec.experiment import figures, tables
from faerec.experiment.aggregate import Aggregate, aggregate, mean_documents
from faerec.experiment.runner import Log, run_dir_for, stderr
from faerec.experiment.spec import Spec
from faerec.io import atomic_path, write_json, write_text
from faerec.report import metrics_table_text

REPORT_MD = "report.md"
SUMMARY_JSON = "summary.json"


@dataclass
class Figure:
    key: str  # artifact key part and file stem
    title: str
    path: Path


@dataclass
class Report:
    folder: Path
    aggregate: Aggregate
    tables: list[tables.Table]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def markdown_path(self) -> Path:
        return self.folder / REPORT_MD

    def terminal_table(self) -> str:
        return metrics_table_text(mean_documents(self.aggregate))


def slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def build_report(spec: Spec, entries: list[dict[str, Any]], out: Path, log: Log = stderr,
                 tsne: bool = True) -> Report:
    """Aggregate the finished runs in ``entries`` (the manifest) and write the report folder."""
    finished = [e for e in entries if e.get("status") != "pending"]
    if not finished:
        raise ValueError("no finished run to report")
    agg = aggregate(finished, spec.reference)
    report = Report(out, agg, _tables(spec, agg, entries))
    for dataset in agg.datasets:
        for backbone in agg.backbones:
            if not any((r.dataset, r.backbone) == (dataset, backbone) for r in agg.rows):
                continue
            png = figures.groups_png(agg, dataset, backbone, labels=_group_labels(spec, agg, dataset, backbone))
            report.figures.append(_save(out, f"groups-{slug(dataset)}-{slug(backbone)}",
                                        f"NDCG@10 by popularity group: {dataset} / {backbone}", png))
    for field_name in spec.sweep:
        if any(r.sweep and r.sweep[0] == field_name for r in agg.rows):
            report.figures.append(_save(out, f"sweep-{slug(field_name)}", f"Overall HR@10 against {field_name}",
                                        figures.sweep_png(agg, field_name)))
    if tsne and spec.tsne:
        report.figures += _tsne_figures(spec, finished, out, report, log)
    _write(spec, report, entries)
    return report


def _group_labels(spec: Spec, agg: Aggregate, dataset: str, backbone: str) -> list[str]:
    """The rows of a group figure: every row that was not swept and, for a swept row, its default model (the
    sweep point whose run is the row's own configuration), or all its points when no point is the default."""
    rows = [r for r in agg.rows if (r.dataset, r.backbone) == (dataset, backbone)]
    labels = [r.label for r in rows if r.sweep is None]
    arms = {arm.label: arm for arm in spec.arms}
    for arm in dict.fromkeys(r.arm for r in rows if r.sweep):
        swept = [r for r in rows if r.sweep and r.arm == arm]
        default = [r for r in swept if arm in arms and Path(r.entries[0]["run_dir"]) == run_dir_for(
            dataset, spec.config(backbone, arms[arm], int(r.entries[0]["seed"])))]
        labels += [r.label for r in (default[:1] or swept)]
    return labels


def _tables(spec: Spec, agg: Aggregate, entries: list[dict[str, Any]]) -> list[tables.Table]:
    out = [tables.main_table(agg)]
    if agg.tests:
        out.append(tables.significance_table(agg))
    labels = [label for label in spec.labels if any(r.label == label for r in agg.rows)]
    if spec.variants and labels:
        out += [tables.ablation_table(agg, dataset, labels) for dataset in agg.datasets]
    out += [tables.sweep_table(agg, f) for f in spec.sweep if any(r.sweep and r.sweep[0] == f for r in agg.rows)]
    out += [tables.groups_table(agg), tables.coverage_table(agg), tables.runs_table(entries)]
    return out


def _tsne_figures(spec: Spec, entries: list[dict[str, Any]], out: Path, report: Report, log: Log) -> list[Figure]:
    from faerec.experiment import tsne

    result = []
    backbone, seed = spec.backbones[0], spec.seeds[0]
    for dataset in dict.fromkeys(e["dataset"] for e in entries):
        chosen = []
        for label in spec.tsne:
            entry = next((e for e in entries if (e["dataset"], e["backbone"], e["label"], int(e["seed"]))
                          == (dataset, backbone, label, seed)), None)
            if entry is not None:
                chosen.append(entry)
        if not chosen:
            continue
        log(f"t-SNE of {', '.join(e['label'] for e in chosen)} on {dataset} / {backbone} / seed {seed}")
        runs = [tsne.load_run(e["run_dir"], e["label"], e.get("dataset_dir")) for e in chosen]
        items = tsne.sample_items(len(runs[0].is_head) - 1, seed=seed)
        png, overlaps = tsne.tsne_png(runs, items, f"t-SNE of {len(items)} sampled items: {dataset} / {backbone} "
                                                   f"/ seed {seed} (red: head, blue: tail)", seed=seed)
        for label, overlap in overlaps.items():
            if overlap is not None:
                report.notes.append(f"t-SNE {dataset} / {label}: ID vs projected-LLM {tsne.NEIGHBOURS}-NN overlap "
                                    f"over the {len(items)} sampled items = {overlap:.3f}")
        result.append(_save(out, f"tsne-{slug(dataset)}-{slug(backbone)}", f"t-SNE of item embeddings: {dataset}",
                            png))
    return result


def _save(out: Path, key: str, title: str, png: bytes) -> Figure:
    path = out / f"{key}.png"
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return Figure(key, title, path)


def _write(spec: Spec, report: Report, entries: list[dict[str, Any]]) -> None:
    out = report.folder
    for table in report.tables:
        write_text(out / f"{table.key}.md", table.markdown())
        records = table.records()
        if records:
            with atomic_path(out / f"{table.key}.csv") as tmp:
                pl.DataFrame(records).write_csv(tmp)
    lines = [f"# Experiment `{spec.name}`", ""]
    if spec.description:
        lines += [spec.description, ""]
    lines += [f"Spec: `{spec.source}`. Datasets: {', '.join(f'`{d}`' for d in report.aggregate.datasets)}; "
              f"backbones: {', '.join(spec.backbones)}; seeds: {', '.join(map(str, spec.seeds))}; "
              f"{spec.epochs} epochs at most (patience {spec.patience}); reference row: "
              f"`{report.aggregate.reference or 'none'}`.", ""]
    pending = [e for e in entries if e.get("status") == "pending"]
    if pending:
        lines += [f"**{len(pending)} run(s) have not finished; the tables cover the others.**", ""]
    for table in report.tables:
        lines += [table.markdown(), ""]
    if report.figures:
        lines += ["### Figures", ""]
        for fig in report.figures:
            lines += [f"**{fig.title}**", "", f"![{fig.title}]({fig.path.name})", ""]
    if report.notes:
        lines += ["### Notes", "", *[f"- {note}" for note in report.notes], ""]
    write_text(report.markdown_path, "\n".join(lines))
    write_json(out / SUMMARY_JSON, {"experiment": spec.name, "spec": spec.to_dict(), **report.aggregate.to_dict(),
                                    "figures": {f.key: str(f.path) for f in report.figures},
                                    "notes": report.notes})
    written = {REPORT_MD, SUMMARY_JSON, *(f.path.name for f in report.figures)}
    written |= {f"{t.key}{suffix}" for t in report.tables for suffix in (".md", ".csv")}
    for stale in out.iterdir():  # tables and figures of an earlier version of the spec
        if stale.suffix in (".md", ".csv", ".png") and stale.name not in written:
            stale.unlink()
