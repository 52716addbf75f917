"""faerec.cores: how many runs train side by side, and on how many threads each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faerec.cores import (
    RUN_MEMORY_BYTES,
    affinity_cores,
    available_memory,
    side_by_side_split,
    split_cores,
    split_for,
    usable_cores,
)

GIB = 2**30


def test_automatic_split_gives_each_waiting_run_its_share_of_the_cores():
    assert (split_cores(2, cores=2, memory=None).processes, split_cores(2, cores=2).threads) == (2, 1)
    eight = split_cores(3, cores=8, memory=64 * GIB)
    assert (eight.processes, eight.threads) == (3, 2) and eight.side_by_side
    many = split_cores(10, cores=4, memory=64 * GIB)
    assert (many.processes, many.threads) == (4, 1)
    assert "10 runs on 4 cores: 4 at a time, 1 thread each" in many.reason


def test_one_run_or_one_core_trains_alone_on_every_core():
    alone = split_cores(1, cores=16, memory=64 * GIB)
    assert (alone.processes, alone.threads, alone.side_by_side) == (1, 16, False)
    assert split_cores(5, cores=1, memory=64 * GIB).processes == 1


def test_memory_caps_the_automatic_split_but_not_a_request():
    tight = split_cores(6, cores=8, memory=2 * RUN_MEMORY_BYTES + GIB)
    assert (tight.processes, tight.threads) == (2, 4) and "memory for 2" in tight.reason
    assert split_cores(6, cores=8, memory=GIB).processes == 1  # less than one run's worth: one at a time
    asked = split_cores(6, requested=3, cores=8, memory=GIB)
    assert (asked.processes, asked.threads) == (3, 2) and "requested" in asked.reason
    assert split_cores(2, requested=5, cores=8, memory=64 * GIB).processes == 2  # never more than the runs
    with pytest.raises(ValueError, match=">= 0"):
        split_cores(2, requested=-1)


def test_usable_cores_follows_the_affinity_and_a_users_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cores() == affinity
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert usable_cores() == 1
    assert affinity_cores() == affinity  # the machine's share, whatever this process's thread budget
    assert split_cores(4, memory=64 * GIB).processes == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert usable_cores() == affinity


def test_available_memory_reads_memavailable(tmp_path: Path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n")
    assert available_memory(meminfo) == 20000000 * 1024
    meminfo.write_text("MemTotal: 5 kB\n")
    assert available_memory(meminfo) is None
    assert available_memory(tmp_path / "missing") is None


def test_runs_on_a_gpu_train_one_at_a_time(monkeypatch):
    import torch

    assert split_for(["cpu", "cpu"]).processes == min(2, usable_cores(), split_cores(2).processes)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_gpu = split_for(["cuda", "cpu"])
    assert on_gpu.processes == 1 and not on_gpu.side_by_side and "GPU" in on_gpu.reason
    assert split_for(["auto", "auto"], requested=2).processes == 2  # asked for: e.g. two local GPUs


def test_side_by_side_split_is_none_whenever_runs_would_train_one_after_another(monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("faerec.cores.usable_cores", lambda: 4)
    monkeypatch.setattr("faerec.cores.available_memory", lambda: 64 * GIB)
    both = side_by_side_split(["cpu", "cpu"])
    assert both is not None and (both.processes, both.threads) == (2, 2)
    assert side_by_side_split(["cpu"]) is None  # one run: all cores, in the caller's process
    assert side_by_side_split(["cpu", "cpu", "cpu"], requested=1) is None  # asked for one at a time
    monkeypatch.setattr("faerec.cores.usable_cores", lambda: 1)
    assert side_by_side_split(["cpu", "cpu"]) is None  # one core: nothing to share
    monkeypatch.setattr("faerec.cores.usable_cores", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert side_by_side_split(["cuda", "cuda"]) is None  # GPU runs one at a time unless asked
    with pytest.raises(ValueError, match=">= 0"):
        side_by_side_split(["cpu", "cpu"], requested=-1)
    with pytest.raises(ValueError, match=">= 0"):
        side_by_side_split(["cuda"], requested=-1)
