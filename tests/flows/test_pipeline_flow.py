"""The `faerec` flow and the re-embedding flow in Prefect's ephemeral mode, on a tiny real catalogue."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.usefixtures("ephemeral_prefect")


def _task_states(flow_run_id) -> list[tuple[str, str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted((run.name, run.state.name) for run in runs)


def _artifact_keys(flow_run_id) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key for a in artifacts}


def test_pipeline_runs_caches_and_publishes(tiny_catalogue: Path, flow_root: Path):
    from faerec.cores import split_for
    from flows.params import PipelineParams
    from flows.pipeline import faerec_pipeline

    params = PipelineParams(datasets=[str(tiny_catalogue)], epochs=2, patience=2)
    state = faerec_pipeline(config=params, return_state=True)
    assert state.is_completed(), state.message
    out = state.result()
    runs = {r["method"]: r for r in out["runs"]}
    assert set(runs) == {"base", "faerec"}
    for metrics in runs.values():
        assert metrics["dataset"] == "tiny-u5i5" and metrics["epochs_run"] <= 2
        assert 0.0 <= metrics["test"]["tail"]["ndcg@10"] <= metrics["test"]["tail"]["hr@10"] <= 1.0
        assert json.loads((Path(metrics["run_dir"]) / "metrics.json").read_text())["method"] == metrics["method"]
    assert out["embeddings"][0]["items"] == out["datasets"][0]["items"]
    split = split_for(["auto", "auto"])
    if split.side_by_side:  # a machine with 2+ cores: each run in its own process on its share of them
        assert {m["threads"]["torch"] for m in runs.values()} == {split.threads}

    keys = _artifact_keys(state.state_details.flow_run_id)
    assert {"faerec-dataset-tiny-u5i5", "faerec-head-tail-tiny-u5i5", "faerec-embedding-cache",
            "faerec-curve-tiny-u5i5-sasrec-base", "faerec-curve-tiny-u5i5-sasrec-faerec", "faerec-metrics",
            "faerec-groups", "faerec-coverage", "faerec-group-plot-tiny-u5i5"} <= keys
    report = Path(out["report_files"]["report"]).read_text()
    assert "Impr. faerec vs base" in report and "Tail-Coverage@10" in report
    assert Path(out["report_files"]["plot:tiny-u5i5"]).read_bytes()[:4] == b"\x89PNG"

    # Each run is evaluated once, by training itself: no separate evaluate task
    first_states = _task_states(state.state_details.flow_run_id)
    assert sorted(name.split()[0] for name, _ in first_states) == ["embed", "prepare", "train", "train"]

    # A repeated run skips every stage: all four come from the task cache.
    again = faerec_pipeline(config=params, return_state=True)
    states = _task_states(again.state_details.flow_run_id)
    assert len(states) == 4 and {state for _, state in states} == {"Cached"}, states
    assert again.result()["runs"][1]["test"] == out["runs"][1]["test"]
    assert again.result()["embeddings"][0]["stage"] == "cached" and out["embeddings"][0]["stage"] == "ran"

    # A cached result whose output folder is gone is not trusted: prepare and embed run again.
    shutil.rmtree(out["datasets"][0]["path"])
    third = faerec_pipeline(config=params, return_state=True)
    states = _task_states(third.state_details.flow_run_id)
    # the cached result is read first, found stale, and the stage runs again
    assert [s for name, s in states if name.startswith("prepare ")] == ["Cached", "Completed"], states
    assert [s for name, s in states if name.startswith("embed ")] == ["Cached", "Completed"], states
    assert all(s == "Cached" for name, s in states if name.startswith("train ")), states
    assert third.result()["embeddings"][0]["embedded"] == 0  # the content-addressed cache still has them
    assert (Path(out["datasets"][0]["path"]) / "stats.json").exists()


def test_reembed_embeds_only_changed_items(tiny_catalogue: Path, tmp_path: Path):
    from flows.reembed import reembed_flow

    catalogue = tmp_path / "catalogue"
    shutil.copytree(tiny_catalogue, catalogue)
    first = reembed_flow(source=str(catalogue))
    assert first["items"] > 100 and first["embedded"] + first["cached"] == first["items"]

    unchanged = reembed_flow(source=str(catalogue))
    assert unchanged["embedded"] == 0 and unchanged["cached"] == unchanged["items"]
    assert unchanged["catalogue_fingerprint"] == first["catalogue_fingerprint"]

    items = pl.read_ndjson(catalogue / "items.jsonl")
    kept = pl.read_parquet(Path(first["path"]).parents[1] / "items.parquet")["item_id"]
    target = kept[0]
    items = items.with_columns(
        pl.when(pl.col("item_id") == target).then(pl.lit("A renamed laboratory item")).otherwise(pl.col("title"))
        .alias("title"))
    items.write_ndjson(catalogue / "items.jsonl")
    changed = reembed_flow(source=str(catalogue))
    assert changed["embedded"] == 1 and changed["cached"] == changed["items"] - 1
    assert changed["catalogue_fingerprint"] != first["catalogue_fingerprint"]
