"""The pipeline's embedding and training fan-out under prefect-dask's DaskTaskRunner, on a LocalCluster with
2 worker processes: the same results as the default runner (training is deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.usefixtures("ephemeral_prefect"), pytest.mark.slow]


def test_pipeline_on_a_local_dask_cluster(tiny_catalogue: Path, flow_root: Path, tmp_path: Path, monkeypatch):
    pytest.importorskip("prefect_dask")
    from prefect_dask import DaskTaskRunner

    from flows.params import PipelineParams
    from flows.pipeline import faerec_pipeline

    monkeypatch.setenv("FAEREC_RUNS_DIR", str(tmp_path / "runs-dask"))  # fresh runs, shared prepared data
    params = PipelineParams(datasets=[str(tiny_catalogue)], epochs=2, patience=2, parallel_training=True)
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                            "dashboard_address": None})
    state = faerec_pipeline.with_options(task_runner=runner)(config=params, return_state=True)
    assert state.is_completed(), state.message
    on_dask = {r["method"]: r for r in state.result()["runs"]}
    assert set(on_dask) == {"base", "faerec"}
    assert all(Path(r["run_dir"]).parent == tmp_path / "runs-dask" for r in on_dask.values())

    monkeypatch.setenv("FAEREC_RUNS_DIR", str(tmp_path / "runs-threads"))
    reference = faerec_pipeline(config=params.model_copy(update={"parallel_training": False}))
    for r in reference["runs"]:
        assert on_dask[r["method"]]["test"] == r["test"], r["method"]
