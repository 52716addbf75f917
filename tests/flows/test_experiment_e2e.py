"""The `faerec-experiment` flow: in Prefect's ephemeral mode, and end to end through a real server and worker.

Both run a tiny spec (base and a narrower variant of it, two seeds, one epoch) on the tiny catalogue and check
the run summary and the artifacts: the progress counter, the report, one table artifact per table and one
markdown artifact per figure.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TINY_SPEC = {"name": "tiny-exp", "methods": ["base"], "seeds": [1, 2], "epochs": 1, "patience": 1,
             "variants": {"narrow": {"method": "base", "hidden": 32}}, "tsne": ["base"],
             "settings": {"layers": 1, "max_len": 20, "device": "cpu"}}
EXPECTED_KEYS = {f"faerec-experiment-tiny-exp-{k}" for k in (
    "progress", "report", "table-main", "table-significance", "table-ablation-tiny-u5i5", "table-groups",
    "table-coverage", "table-runs", "figure-groups-tiny-u5i5-sasrec", "figure-tsne-tiny-u5i5-sasrec")}


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found}


@pytest.mark.usefixtures("ephemeral_prefect")
def test_experiment_flow_trains_skips_and_publishes(tiny_catalogue: Path, flow_root: Path):
    from flows.experiment import ExperimentParams, experiment_flow

    params = ExperimentParams(datasets=[str(tiny_catalogue)], **TINY_SPEC)
    state = experiment_flow(config=params, return_state=True)
    assert state.is_completed(), state.message
    out = state.result()
    assert (out["runs"], out["trained"], out["skipped"]) == (4, 4, 0)
    assert Path(out["report"]) == flow_root / "runs" / "tiny-exp" / "report"
    # the flow run's own artifacts (the progress counter belongs to the flow run; the sub-flow updates it)
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert EXPECTED_KEYS <= set(artifacts)
    assert artifacts["faerec-experiment-tiny-exp-progress"].data == 100.0
    assert artifacts["faerec-experiment-tiny-exp-table-main"].type == "table"
    assert "data:image/png;base64," in artifacts["faerec-experiment-tiny-exp-figure-tsne-tiny-u5i5-sasrec"].data
    assert "Impr. narrow vs base" in artifacts["faerec-experiment-tiny-exp-report"].data

    again = experiment_flow(config=params, return_state=True).result()
    assert (again["runs"], again["trained"], again["skipped"]) == (4, 0, 4)


def test_a_spec_file_and_inline_fields_combine():
    from faerec.errors import FaerecError
    from flows.experiment import ExperimentParams, spec_of

    spec = spec_of(ExperimentParams(spec="seeds", seeds=[7], epochs=2))
    assert (spec.name, spec.seeds, spec.epochs, spec.methods) == ("seeds", [7], 2, ["base", "faerec"])
    with pytest.raises(FaerecError, match="datasets: missing"):
        spec_of(ExperimentParams(methods=["base"]))


# --- end to end: a real server, `prefect deploy --all`, a process worker -------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(api_url: str, path: str, body: dict) -> list[dict]:
    request = urllib.request.Request(f"{api_url}/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _prefect(env: dict[str, str], *args: str, timeout: float = 480) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def stack(flow_root: Path, tmp_path_factory: pytest.TempPathFactory):
    from flows.stack import PIPELINE_POOL, StackConfig, down, stack_env, up

    config = StackConfig(port=_free_port(), workers=(PIPELINE_POOL,), state_dir=tmp_path_factory.mktemp("stack"),
                         set_profile=False)
    try:
        summary = up(config)
        yield summary["api_url"], stack_env(config, summary["api_url"])
    finally:
        down(config)


@pytest.mark.e2e
@pytest.mark.slow
def test_experiment_deployment_publishes_tables_and_figures(stack, tiny_catalogue: Path):
    api_url, env = stack
    # two runs at a time, each in its own process (torch's random state is per process)
    params = {"config": {**TINY_SPEC, "datasets": [str(tiny_catalogue)], "name": "tiny-exp-e2e", "parallel": 2}}
    started = time.perf_counter()
    result = _prefect(env, "deployment", "run", "faerec-experiment/experiment", "--params", json.dumps(params),
                      "--watch", "--watch-interval", "2", "--watch-timeout", "450")
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Completed" in output, output[-3000:]
    print(f"experiment deployment run in {time.perf_counter() - started:.1f} s")
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", output).group(1)
    artifacts = _api(api_url, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    keys = {a["key"] for a in artifacts}
    assert {k.replace("tiny-exp-", "tiny-exp-e2e-") for k in EXPECTED_KEYS} <= keys
    main = next(a for a in artifacts if a["key"] == "faerec-experiment-tiny-exp-e2e-table-main")
    assert main["type"] == "table" and "narrow" in json.dumps(main["data"])
    listing = _prefect({**env, "COLUMNS": "400"}, "artifact", "ls").stdout  # wide: rich cuts long keys
    assert "faerec-experiment-tiny-exp-e2e-table-main" in listing
    assert "faerec-experiment-tiny-exp-e2e-figure-tsne-tiny-u5i5-sasrec" in listing
