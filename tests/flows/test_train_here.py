"""The pipeline's local training stage: runs side by side on their share of the cores only where that pays."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def stage(monkeypatch):
    """flows.pipeline.train_here with the task calls recorded instead of run, on a 4-core machine."""
    import flows.pipeline as pipeline

    seen: list[tuple] = []
    monkeypatch.setattr("faerec.cores.usable_cores", lambda: 4)
    monkeypatch.setattr("faerec.cores.available_memory", lambda: 64 * 2**30)
    monkeypatch.setattr(pipeline, "cached", lambda task, valid, **kwargs: seen.append(("here", kwargs)) or kwargs)
    monkeypatch.setattr(pipeline, "cached_concurrently", lambda task, valid, calls, at_once=None: seen.append(
        ("side by side", calls, at_once)) or [(call, False) for call in calls])

    def train(calls, processes=0):
        return pipeline.train_here(calls, processes, logging.getLogger("test")), seen

    return train


def calls(*devices: str) -> list[dict]:
    return [{"dataset_dir": "d", "config": {"device": device}, "run_dir": f"runs/r{i}"}
            for i, device in enumerate(devices)]


def test_several_cpu_runs_train_side_by_side_on_their_share_of_the_cores(stage):
    results, seen = stage(calls("auto", "cpu", "auto"))
    assert [r["run_dir"] for r in results] == ["runs/r0", "runs/r1", "runs/r2"]
    (how, submitted, at_once), = seen
    assert how == "side by side" and at_once == 3 and {c["threads"] for c in submitted} == {1}
    _, seen = stage(calls("cpu", "cpu"))
    assert seen[-1][2] == 2 and {c["threads"] for c in seen[-1][1]} == {2}


def test_one_run_a_request_for_one_or_a_gpu_trains_in_this_process(stage, monkeypatch):
    import torch

    for args in [(calls("cpu"),), (calls("cpu", "cpu"), 1)]:
        results, seen = stage(*args)
        assert all(entry[0] == "here" and "threads" not in entry[1] for entry in seen[-len(results):])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _, seen = stage(calls("auto", "auto"))
    assert [entry[0] for entry in seen[-2:]] == ["here", "here"]
