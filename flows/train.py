"""The `faerec-train` flow (deployment `train`, on the `gpu` work pool): one run, trained and tested.

The pipeline hands runs here with run_deployment when train_on="gpu-pool". The worker's machine decides the
device (config device "auto": CUDA when present). run_dir is relative to the project folder the pull step
changes into, so both pools must see the same runs/ folder (one machine, or shared storage).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows import artifacts
from flows.tasks import cached, train_task, trained


@flow(name="faerec-train", log_prints=True)
def train_flow(dataset_dir: str, config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Train (resuming from run_dir's checkpoint if there is one); training tests the best weights, so its
    metrics.json is the result (nothing is evaluated twice)."""
    metrics = cached(train_task, trained, dataset_dir=dataset_dir, config=config, run_dir=run_dir)
    artifacts.publish_curve(metrics)
    return metrics
