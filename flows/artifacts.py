"""Publish the report (faerec.report) as Prefect artifacts. Every artifact has a key, so the UI keeps its
versions over time: one key per dataset for its statistics, split and plot, one per run for its curve, and
one each for the cross-run tables."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

from faerec import report
from faerec.data import folder
from faerec.io import atomic_path, write_text

PREFIX = "faerec"


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join((PREFIX, *parts)).lower())).strip("-")


def publish_dataset(prepared: dict[str, Any]) -> dict[str, int]:
    """Dataset statistics (every k-core round) and the head/tail split; returns items per popularity group."""
    path = Path(prepared["path"])
    stats = json.loads((path / folder.STATS).read_text())
    name = str(stats.get("dataset_id", path.name))
    create_markdown_artifact(key=artifact_key("dataset", name), markdown=report.dataset_stats_markdown(stats),
                             description=f"Dataset statistics of {name}, with every k-core filter round")
    pop = pl.read_parquet(path / folder.POPULARITY, columns=["train_count", "is_head"])
    summary = report.head_tail_summary(pop["train_count"].to_numpy(), pop["is_head"].to_numpy().astype(np.bool_))
    create_markdown_artifact(key=artifact_key("head-tail", name), markdown=report.head_tail_markdown(summary, name),
                             description=f"Head/tail split of {name} (training popularity)")
    return summary["group_items"]


def publish_embeddings(summaries: Sequence[dict[str, Any]], datasets: Sequence[str]) -> None:
    create_markdown_artifact(key=artifact_key("embedding-cache"),
                             markdown=report.embedding_summary_markdown(summaries, datasets),
                             description="Embedding cache: newly embedded vs cached items per dataset")


def publish_curve(metrics: dict[str, Any]) -> None:
    run_dir = Path(metrics["run_dir"])
    history = report.read_history(run_dir / "history.jsonl")
    title = f"{metrics.get('dataset')} / {metrics.get('backbone')} / {metrics.get('method')}"
    create_markdown_artifact(
        key=artifact_key("curve", str(metrics.get("dataset")), str(metrics.get("backbone")), str(metrics.get("method"))),
        markdown=report.training_curve_markdown(history, title, metrics.get("best_epoch")),
        description=f"Training curve (loss, validation NDCG per epoch) of {run_dir.name}")


def publish_results(results: Sequence[dict[str, Any]], group_items: dict[str, dict[str, int]],
                    report_dir: Path | None = None) -> dict[str, str]:
    """The metrics, popularity-group and coverage tables and one group-analysis plot per dataset.

    The same Markdown and PNGs are written to ``report_dir`` (runs/report/ by default) for readers without
    the UI. Returns the written file paths.
    """
    tables = {
        "metrics": (report.metrics_table_markdown(results) + "\n" + report.run_facts_markdown(results),
                    "Overall / head / tail HR and NDCG@10, @20 per backbone x method, with improvements over base"),
        "groups": (report.groups_table_markdown(results), "Test NDCG@20 by the target's popularity group"),
        "coverage": (report.coverage_table_markdown(results), "Coverage@K and Tail-Coverage@K per run"),
    }
    for name, (markdown, description) in tables.items():
        create_markdown_artifact(key=artifact_key(name), markdown=markdown, description=description)
    written: dict[str, str] = {}
    if report_dir is not None:
        write_text(report_dir / "report.md", "\n".join(markdown for markdown, _ in tables.values()))
        written["report"] = str(report_dir / "report.md")
    for dataset in dict.fromkeys(str(r.get("dataset")) for r in results):
        runs = [r for r in results if str(r.get("dataset")) == dataset]
        if not report.group_labels(runs):
            continue
        png = report.group_analysis_png(runs, "hr@10", group_items.get(dataset), title=f"Group analysis: {dataset}")
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        create_image_artifact(image_url=url, key=artifact_key("group-plot", dataset),
                              description=f"Group analysis of {dataset}: test HR@10 per popularity group")
        if report_dir is not None:
            target = report_dir / f"group-analysis-{artifact_key(dataset).removeprefix(PREFIX + '-')}.png"
            with atomic_path(target) as tmp:
                tmp.write_bytes(png)
            written[f"plot:{dataset}"] = str(target)
    return written


RECOMMENDATION_SAMPLE = 20


def publish_recommendations(summary: dict[str, Any], sample: int = RECOMMENDATION_SAMPLE) -> str:
    """A table artifact with a seeded sample of ``sample`` rows of a run's recommendation export (with item
    titles), keyed faerec-recommendations-<run>; returns the key."""
    frame = pl.read_parquet(summary["out"])
    frame = frame.sample(n=min(sample, frame.height), seed=0).sort(["user_id", "rank"])
    items_file = Path(summary["dataset_dir"]) / folder.ITEMS if summary.get("dataset_dir") else None
    if items_file is not None and items_file.is_file():
        items = pl.read_parquet(items_file)
        frame = frame.join(items.select(c for c in ("item_id", "title", "candidate") if c in items.columns),
                           on="item_id", how="left")
    run = Path(summary["run_dir"]).name
    key = artifact_key("recommendations", run)
    candidates = summary.get("candidate_items") or 0
    note = (f"; {candidates} candidate-only items " + ("included" if summary.get("candidates_recommendable")
                                                       else "not recommendable by this method")) if candidates else ""
    rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in frame.to_dicts()]
    create_table_artifact(key=key, table=rows,
                          description=f"Sample of {len(rows)} rows of {run}'s top-{summary.get('k')} recommendations "
                          f"({summary.get('rows')} rows for {summary.get('users')} users, history excluded{note})")
    return key
