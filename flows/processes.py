"""Background processes in their own session (process group): start, probe, and stop with the whole group.

The local stack (flows.stack) runs the Prefect server and workers this way, so stopping a worker also ends
the flow-run processes it started, and a stop never touches processes it did not start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> int:
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


def stop_group(pid: int, timeout: float, signals: tuple[signal.Signals, ...]) -> bool:
    """Signal the process group ``pid`` leads (we started it with its own session), then kill what remains."""
    if not alive(pid):
        return False
    for number, sig in enumerate(signals):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        if number + 1 < len(signals):
            time.sleep(1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_alive(pid):
            _reap(pid)
            return True
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our exited child
        if finished == pid:
            return False
    except ChildProcessError:
        pass  # not our child (a stack started by another faerec process)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0
