"""A base job template for a Kubernetes `gpu` work pool: the default template plus a GPU, a node selector and
the shared data/ and runs/ volume.

The pipeline and the training jobs must see the same data/ and runs/ folders (docs/PREFECT.md, section 8), and
prefect-kubernetes's default template (>= 0.8) has CPU and memory variables but no GPU request, node selector
or volume. This adds three job variables to it:

- ``gpu_count`` (default 1): ``resources.limits["nvidia.com/gpu"]`` of the job's container;
- ``node_selector`` (default none): the pod's ``nodeSelector``, e.g. ``{"nvidia.com/gpu.present": "true"}``;
- ``shared_volume_claim`` (default ``faerec-shared``): a PersistentVolumeClaim mounted at ``<project>/data``
  and ``<project>/runs`` (sub-paths ``data`` and ``runs``), ``<project>`` being ``project_dir`` (``/app``).

    pip install 'faerec[kubernetes]'
    python -m flows.kubernetes > gpu-template.json
    prefect work-pool create gpu --type kubernetes --base-job-template gpu-template.json

Everything else (image, env, CPU and memory) is the default template's, set per deployment as job_variables
(prefect.yaml; the example in docs/PREFECT.md is rendered through this template by tests/flows/test_kubernetes.py).
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
VOLUME_NAME = "faerec-shared"
SHARED_FOLDERS = ("data", "runs")


def default_template() -> dict[str, Any]:
    """prefect-kubernetes's default base job template (needs the `kubernetes` extra)."""
    try:
        from prefect_kubernetes.worker import KubernetesWorker
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("prefect-kubernetes is not installed: pip install 'faerec[kubernetes]'") from exc
    return KubernetesWorker.get_default_base_job_template()


def gpu_job_template(base: dict[str, Any], project_dir: str = "/app") -> dict[str, Any]:
    """``base`` (a Kubernetes base job template) with the GPU, node-selector and shared-volume variables."""
    template = copy.deepcopy(base)
    properties = template["variables"]["properties"]
    properties["gpu_count"] = {"title": "GPUs", "type": "integer", "default": 1, "minimum": 0,
                               "description": f"{GPU_RESOURCE} limit of the job's container."}
    properties["node_selector"] = {"title": "Node selector", "type": "object",
                                   "description": "nodeSelector of the job's pod, e.g. the GPU node label.",
                                   "additionalProperties": {"type": "string"}}
    properties["shared_volume_claim"] = {
        "title": "Shared volume claim", "type": "string", "default": VOLUME_NAME,
        "description": f"PersistentVolumeClaim holding the data/ and runs/ folders the pipeline also uses "
                       f"(mounted at {project_dir}/data and {project_dir}/runs)."}
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container.setdefault("resources", {}).setdefault("limits", {})[GPU_RESOURCE] = "{{ gpu_count }}"
    container["volumeMounts"] = [{"name": VOLUME_NAME, "mountPath": f"{project_dir}/{folder}", "subPath": folder}
                                 for folder in SHARED_FOLDERS]
    pod["volumes"] = [{"name": VOLUME_NAME, "persistentVolumeClaim": {"claimName": "{{ shared_volume_claim }}"}}]
    pod["nodeSelector"] = "{{ node_selector }}"
    return template


def main() -> None:
    json.dump(gpu_job_template(default_template()), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
