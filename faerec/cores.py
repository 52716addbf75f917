"""How to share a CPU machine's cores between training runs: one after another, or side by side.

torch's CPU kernels scale sublinearly with threads: on a 2-core machine SASRec training ran 1.36x faster on
two threads than on one, and MiniLM embedding 1.74x. So when several runs are waiting, P runs side by side, each
in its own process on cores / P threads, finish sooner than the same runs one after another on every core.
Measured on the bundled sample (SASRec and SASRec+FAERec, 20 epochs each, `faerec train`): one after another
on two threads 159.1 s, side by side on one thread each 137.5 s.

Runs side by side need separate processes: torch's thread count and random state are process-wide.
Each process holds its own copy of the data and the model, so the split also respects the memory
available now: at most one process per ``RUN_MEMORY_BYTES`` of it. The thread count of a run changes the
order of its floating-point sums, so a run's numbers differ in the last digits between splits. A fixed split
gives the same numbers every time. The split is never changed while a run trains, so a run's numbers never
depend on when another run finished.

An ``OMP_NUM_THREADS`` the user set is the budget to share, in place of the machine's cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# A Beauty-sized run peaks at ~1-1.2 GB (docs/PERFORMANCE.md); room for the parent and the page cache on top.
RUN_MEMORY_BYTES = 3 * 2**30
_MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class CoreSplit:
    processes: int  # runs at a time, each in its own process
    threads: int  # torch threads of each
    reason: str

    @property
    def side_by_side(self) -> bool:
        return self.processes > 1


def affinity_cores() -> int:
    """Cores this process may run on: its CPU affinity (e.g. a container's cpuset), whatever its thread count."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def usable_cores() -> int:
    """Cores this process may run on (``affinity_cores``), capped by a user's OMP_NUM_THREADS."""
    cores = affinity_cores()
    user = os.environ.get("OMP_NUM_THREADS", "").strip()
    if user.isdigit() and int(user) > 0:
        cores = min(cores, int(user))
    return max(cores, 1)


def available_memory(meminfo: Path = _MEMINFO) -> int | None:
    """Bytes of memory available to new processes (MemAvailable), or None where /proc/meminfo is missing."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def split_cores(runs: int, requested: int = 0, cores: int | None = None, memory: int | None = None) -> CoreSplit:
    """The split for ``runs`` waiting CPU runs. ``requested`` 0 is automatic: as many processes as runs,
    cores and memory allow; N asks for N at a time (capped by the runs and cores, never by memory: the user
    asked). ``cores`` and ``memory`` (bytes) default to this machine's; where its memory is unknown, it does not
    cap the split."""
    _check_requested(requested)
    cores = usable_cores() if cores is None else max(cores, 1)
    memory = available_memory() if memory is None else memory
    runs = max(runs, 1)
    if requested:
        processes = min(requested, runs, cores)
        reason = f"{requested} at a time requested"
    else:
        processes = min(runs, cores)
        reason = f"{runs} runs on {cores} cores"
        if memory is not None and processes > 1:
            fits = max(int(memory // RUN_MEMORY_BYTES), 1)
            if fits < processes:
                processes, reason = fits, f"{reason}, memory for {fits} ({memory / 2**30:.1f} GiB available)"
    threads = max(cores // processes, 1)
    return CoreSplit(processes, threads, f"{reason}: {processes} at a time, {threads} thread{'s' * (threads > 1)} each")


def split_for(devices: list[str], requested: int = 0) -> CoreSplit:
    """The split for runs configured with these training ``devices`` (faerec.device names). Runs on a GPU
    train one at a time unless ``requested`` asks for more: they would share one device's memory."""
    from faerec.device import resolve_device

    if any(resolve_device(device).type != "cpu" for device in devices):
        _check_requested(requested)
        processes = min(max(requested, 1), max(len(devices), 1))
        threads = max(usable_cores() // processes, 1)
        return CoreSplit(processes, threads, f"runs train on a GPU: {processes} at a time")
    return split_cores(len(devices), requested)


def side_by_side_split(devices: list[str], requested: int = 0) -> CoreSplit | None:
    """The split when the runs configured with these ``devices`` should train side by side, else None: one
    run, ``requested`` 1, or a split of one process at a time (then they train one after another, in the
    caller's process). The one place that decides between the two, for the pipeline, experiments and their
    flow."""
    split = split_for(devices, requested)
    return split if split.side_by_side else None


def _check_requested(requested: int) -> None:
    if requested < 0:
        raise ValueError(f"runs at a time must be >= 0 (0 = automatic), got {requested}")
