"""faerec.openmp: the OpenMP wait policy follows how busy the machine is now, not over the last minute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from faerec import openmp


class FakeStat:
    """A /proc/stat whose CPU line advances by the given (idle, busy) jiffies at each read."""

    def __init__(self, tmp_path: Path, steps: list[tuple[int, int]]) -> None:
        self.path = tmp_path / "stat"
        self.steps = iter(steps)
        self.idle = self.busy = 0

    def read_text(self) -> str:
        idle, busy = next(self.steps)
        self.idle, self.busy = self.idle + idle, self.busy + busy
        # user nice system idle iowait irq softirq steal guest guest_nice
        return f"cpu  {self.busy} 0 0 {self.idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"


def test_busy_cores_is_the_share_of_cpu_time_not_idle(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    stat = FakeStat(tmp_path, [(1000, 1000), (25, 75)])  # the first read's absolute values do not matter
    assert openmp.busy_cores(stat, window=0) == 1.5
    assert openmp.machine_is_busy(FakeStat(tmp_path, [(0, 0), (25, 75)]), window=0)  # 1.5 of 2 cores in use
    assert not openmp.machine_is_busy(FakeStat(tmp_path, [(0, 0), (60, 40)]), window=0)  # 0.8 of 2


def test_without_proc_stat_the_load_average_decides(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert openmp.busy_cores(tmp_path / "missing", window=0) is None
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 1.0, 1.0))
    assert openmp.machine_is_busy(tmp_path / "missing", window=0)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 3.0, 3.0))
    assert not openmp.machine_is_busy(tmp_path / "missing", window=0)


def test_a_policy_the_user_set_wins_and_a_busy_machine_gets_passive(tmp_path, monkeypatch):
    code = "from faerec.openmp import choose_wait_policy; print(choose_wait_policy())"
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "ACTIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "restored-after-the-test")
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as if torch were not imported yet
    monkeypatch.setattr(openmp, "machine_is_busy", lambda: True)
    assert openmp.choose_wait_policy() == "PASSIVE" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
