"""The Kubernetes `gpu` pool template (flows/kubernetes.py) renders the docs' job_variables into a Job manifest
with the GPU limit, the node selector and the shared data/ and runs/ mounts."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("prefect_kubernetes")

from flows.kubernetes import GPU_RESOURCE, default_template, gpu_job_template  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs" / "PREFECT.md"
# The template holds no block or variable references, so rendering needs no API; passing a client keeps Prefect
# from starting a temporary server just to resolve nothing (a reference would fail loudly on this object).
_NO_API = object()


def documented_job_variables() -> dict:
    """The job_variables of the `train` deployment example in docs/PREFECT.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.S)
    example = next(b for b in blocks if "job_variables:" in b and "gpu_count" in b)
    (deployment,) = yaml.safe_load(example)
    assert deployment["name"] == "train" and deployment["work_pool"]["name"] == "gpu"
    return deployment["work_pool"]["job_variables"]


def render(template: dict, values: dict) -> dict:
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(
        template, values, client=_NO_API))
    return config.job_manifest


def test_documented_job_variables_render_into_a_gpu_job():
    template = gpu_job_template(default_template())
    values = documented_job_variables()
    unknown = set(values) - set(template["variables"]["properties"])
    assert not unknown, f"job_variables the template does not declare (they would be ignored): {unknown}"
    manifest = render(template, values)
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == values["image"]
    assert container["resources"]["limits"][GPU_RESOURCE] == 1
    assert container["resources"]["limits"]["memory"] == "32Gi"
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["volumes"] == [{"name": "faerec-shared", "persistentVolumeClaim": {"claimName": "faerec-shared"}}]
    mounts = {m["mountPath"]: m["subPath"] for m in container["volumeMounts"]}
    assert mounts == {"/app/data": "data", "/app/runs": "runs"}
    env = container["env"]  # a dict before prepare_for_flow_run turns it into a list of name/value pairs
    assert (env.get("FAEREC_PROJECT_DIR") if isinstance(env, dict) else {e["name"]: e["value"] for e in env}
            .get("FAEREC_PROJECT_DIR")) == "/app"


def test_defaults_request_one_gpu_and_no_node_selector():
    template = gpu_job_template(default_template())
    pod = render(template, {"image": "faerec:test"})["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"][GPU_RESOURCE] == 1
    assert "nodeSelector" not in pod  # an unset variable leaves the key out
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "faerec-shared"
