"""How idle OpenMP threads wait: spin briefly (the default) on a free machine, sleep (PASSIVE) on a busy one.

torch's CPU kernels run on an OpenMP pool. Between parallel regions its threads spin before sleeping, which
is what makes back-to-back small kernels fast: on an otherwise idle 2-core machine, a SASRec+FAERec epoch on
Beauty took 14.6-16.9 s with the default policy and 22.4-23.0 s with PASSIVE. On a machine whose cores are
already busy, the spinning threads steal time from the very threads they wait for: at load ~10 on 2 cores a
SASRec batch took 5-20 s by default and 0.1-0.8 s with PASSIVE. So PASSIVE is chosen only when the machine
is busy when the command starts. An OMP_WAIT_POLICY the user set always wins. The choice must be made
before torch is imported, so call this first in a command.

"Busy" is measured now, not from the load average: the share of CPU time other processes use over a quarter
of a second (/proc/stat), at least all cores but half a one. The 1-minute load average remembers the last
minute: right after `scripts/setup.sh` (the README's main job) it can still read >= 2 on a machine that is
now idle, and PASSIVE costs a sixth of the training speed there (SASRec+FAERec on the bundled sample, 4
epochs of `benchmarks/train.py`: 3.91 s per epoch with PASSIVE, 3.36 s without).
Without /proc/stat (not Linux) the load average is the fallback.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
WINDOW_SECONDS = 0.25
FREE_MARGIN_CORES = 0.5  # busy = fewer than this many cores' worth of CPU left free


def _cpu_times(stat: Path) -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs from the first line of /proc/stat."""
    fields = [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])  # guest time is already counted in user


def busy_cores(stat: Path = PROC_STAT, window: float = WINDOW_SECONDS) -> float | None:
    """Cores' worth of CPU in use over the next ``window`` seconds (this process sleeps meanwhile), or None
    where /proc/stat cannot be read."""
    try:
        idle_before, total_before = _cpu_times(stat)
        time.sleep(window)
        idle_after, total_after = _cpu_times(stat)
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total_after - total_before
    if elapsed <= 0:
        return None
    return (1.0 - (idle_after - idle_before) / elapsed) * (os.cpu_count() or 1)


def machine_is_busy(stat: Path = PROC_STAT, window: float = WINDOW_SECONDS) -> bool:
    cores = os.cpu_count() or 1
    used = busy_cores(stat, window)
    if used is not None:
        return used >= cores - FREE_MARGIN_CORES
    try:
        return os.getloadavg()[0] >= cores
    except OSError:  # no load average on this platform either
        return False


def choose_wait_policy() -> str | None:
    """Set OMP_WAIT_POLICY=PASSIVE on a busy machine; returns the policy in effect (None: OpenMP's default)."""
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY")
    if machine_is_busy():
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None
