"""End to end through a real Prefect server and workers on loopback, started and stopped by flows.stack.

One stack for the whole test (starting a server costs tens of seconds): deploy prefect.yaml, run
`prefect deployment run faerec/full-pipeline` and wait for Completed, list its artifacts through the API and
`prefect artifact ls`, hand training to the `gpu` pool (a second process worker stands in for the GPU
machine), set off the re-embedding deployment with a `faerec.catalogue.changed` event, and finally stop
every process the stack started.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.stack import GPU_POOL, PIPELINE_POOL, StackConfig, StackState, down, stack_env, up

pytestmark = pytest.mark.e2e
TINY = {"epochs": 1, "patience": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(api_url: str, path: str, body: dict) -> list[dict]:
    request = urllib.request.Request(f"{api_url}/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _prefect(env: dict[str, str], *args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _run_deployment(env: dict[str, str], name: str, params: dict) -> str:
    """`prefect deployment run NAME --watch`; returns the flow run id once it is Completed."""
    result = _prefect(env, "deployment", "run", name, "--params", json.dumps(params), "--watch",
                      "--watch-interval", "2", "--watch-timeout", "400")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Completed" in output, output[-3000:]
    return re.search(r"UUID:\s*([0-9a-f-]{36})", output).group(1)


def _wait_for_runs(api_url: str, flow_name: str, count: int, timeout: float = 240) -> list[dict]:
    """Finished runs of ``flow_name`` that were not created by a cron schedule."""
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = _api(api_url, "flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}})
        runs = [r for r in runs if not r["auto_scheduled"]]
        if len(runs) >= count and all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for r in runs):
            return runs
        time.sleep(2)
    raise AssertionError(f"no finished {flow_name} run within {timeout} s: {[r['state_name'] for r in runs]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def stack(flow_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A running stack (server, pools, deployments, a worker on each pool); stopped, and checked, at the end."""
    config = StackConfig(port=_free_port(), workers=(PIPELINE_POOL, GPU_POOL),
                         state_dir=tmp_path_factory.mktemp("stack"))
    pids: list[int] = []
    try:
        started = time.perf_counter()
        summary = up(config)
        print(f"stack up in {time.perf_counter() - started:.1f} s")
        pids = [summary["server_pid"], *summary["workers"].values()]
        yield summary["api_url"], stack_env(config, summary["api_url"])
    finally:
        stopped = down(config)
    assert StackState.load(config.stack_dir) is None
    assert len(stopped["stopped"]) == 3
    assert not [pid for pid in pids if _alive(pid)]


def test_full_pipeline_deployment_publishes_artifacts(stack, tiny_catalogue: Path):
    api_url, env = stack
    started = time.perf_counter()
    run_id = _run_deployment(env, "faerec/full-pipeline", {"config": {**TINY, "datasets": [str(tiny_catalogue)]}})
    print(f"full-pipeline run in {time.perf_counter() - started:.1f} s")
    artifacts = _api(api_url, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    keys = {a["key"] for a in artifacts}
    assert {"faerec-dataset-tiny-u5i5", "faerec-head-tail-tiny-u5i5", "faerec-embedding-cache",
            "faerec-curve-tiny-u5i5-sasrec-base", "faerec-curve-tiny-u5i5-sasrec-faerec", "faerec-metrics",
            "faerec-groups", "faerec-coverage", "faerec-group-plot-tiny-u5i5"} <= keys
    metrics = next(a for a in artifacts if a["key"] == "faerec-metrics")
    assert "Impr. faerec vs base" in metrics["data"]
    listing = _prefect(env, "artifact", "ls").stdout
    assert "faerec-metrics" in listing and "faerec-group-plot-tiny-u5i5" in listing


@pytest.mark.slow  # ~1 min more: a second flow-run process on the gpu pool
def test_training_handoff_to_gpu_pool(stack, tiny_catalogue: Path):
    api_url, env = stack
    started = time.perf_counter()
    _run_deployment(env, "faerec/full-pipeline", {"config": {
        **TINY, "datasets": [str(tiny_catalogue)], "methods": ["base"], "seed": 7, "train_on": "gpu-pool"}})
    print(f"gpu handoff run in {time.perf_counter() - started:.1f} s")
    train_runs = _wait_for_runs(api_url, "faerec-train", 1)
    assert [(r["work_pool_name"], r["state_name"]) for r in train_runs] == [(GPU_POOL, "Completed")]
    assert train_runs[0]["parameters"]["config"]["seed"] == 7


def test_catalogue_event_triggers_reembedding(stack, tiny_catalogue: Path):
    api_url, env = stack
    started = time.perf_counter()
    emitted = _prefect(env, "event", "emit", "faerec.catalogue.changed", "--resource", json.dumps(
        {"prefect.resource.id": "faerec.catalogue.tiny", "faerec.source": str(tiny_catalogue)}))
    assert emitted.returncode == 0, emitted.stderr
    runs = _wait_for_runs(api_url, "faerec-reembed", 1)
    print(f"event-triggered reembed run in {time.perf_counter() - started:.1f} s")
    assert [r["state_name"] for r in runs] == ["Completed"]
    assert runs[0]["parameters"]["source"] == str(tiny_catalogue)
