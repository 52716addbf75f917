"""How idle OpenMP threads wait: spin briefly (the default) on a free machine, sleep (PASSIVE) on a busy one.

torch's CPU kernels run on an OpenMP pool. Between parallel regions its threads spin before sleeping, which
is what makes back-to-back small kernels fast: on an otherwise idle 2-core machine, a SASRec+FAERec epoch on
Beauty took 14.6-16.9 s with the default policy and 22.4-23.0 s with PASSIVE. On a machine whose cores are
already busy, the spinning threads steal time from the very threads they wait for: at load ~10 on 2 cores a
SASRec batch took 5-20 s by default and 0.1-0.8 s with PASSIVE. So PASSIVE is chosen only when the machine
is busy when the command starts (1-minute load average >= the number of cores). An OMP_WAIT_POLICY the user
set always wins. The choice must be made before torch is imported, so call this first in a command.
"""

from __future__ import annotations

import os
import sys


def choose_wait_policy() -> str | None:
    """Set OMP_WAIT_POLICY=PASSIVE on a busy machine; returns the policy in effect (None: OpenMP's default)."""
    if "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY")
    try:
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        return None
    if busy:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE"
    return None
