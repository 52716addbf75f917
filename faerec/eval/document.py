"""The runs/<run-id>/metrics.json document (docs/CONTRACT.md), shared by training and `faerec evaluate`."""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

import torch

from faerec.allocator import in_use as allocator_in_use
from faerec.data.dataset import Dataset
from faerec.memory import peak_resident_mb


def split_block(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluator result without its timing (timings live under "timing")."""
    return {key: value for key, value in result.items() if key != "seconds"}


def peak_memory_mb(device: torch.device | None = None) -> dict[str, float | str]:
    """Peak resident memory of this process since the run began (faerec.memory.reset_peak_resident; else since
    the process started), the peak CUDA allocation, in MiB, and the malloc in use (faerec.allocator)."""
    rss_mb = peak_resident_mb()
    if rss_mb is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux
    out: dict[str, float | str] = {"peak_rss_mb": round(rss_mb, 1), "allocator": allocator_in_use()}
    if device is not None and device.type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def metrics_document(
    dataset: Dataset,
    backbone: str,
    method: str,
    seed: int,
    best_epoch: int,
    epochs_run: int,
    valid: dict[str, Any],
    test: dict[str, Any],
    timing: dict[str, float],
    device: str,
    memory: dict[str, float] | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    doc = {
        "dataset": dataset.name,
        "backbone": backbone,
        "method": method,
        "seed": seed,
        "best_epoch": best_epoch,
        "epochs_run": epochs_run,
        "n_users_evaluated": int(dataset.evaluable.sum()),
        "n_users_skipped": int((~dataset.evaluable).sum()),
        "protocol": test.get("protocol", "novel"),
        "test": split_block(test),
        "valid": split_block(valid),
        "timing": {key: round(float(value), 4) for key, value in timing.items()},
        "device": device,
        # what the timings ran with: intra-op threads and how idle OpenMP threads waited (faerec.openmp)
        "threads": {"torch": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY") or "default"},
    }
    if memory:
        doc["memory"] = memory
    if stop_reason:
        doc["stop_reason"] = stop_reason
    return doc
