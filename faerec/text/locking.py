"""A per-namespace lock between jobs that read a cache namespace (``embed``) and compaction, which deletes
the parts it merged.

Embedding jobs take the lock shared, so any number of them can append side by side; ``cache compact`` takes it
exclusive and refuses at once while an embedding job holds it (it would delete parts that job has indexed
and will read back). An embedding job that starts during a compaction waits for it: compactions are short.
The lock is ``flock`` on ``<namespace>/.lock``; the operating system drops it when a process dies, so a killed
job never leaves a stale lock. Where ``fcntl`` does not exist (Windows) no lock is taken.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faerec.errors import FaerecError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@contextmanager
def namespace_lock(namespace: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the namespace's lock: shared (waits for a running compaction) or exclusive (fails at once)."""
    if fcntl is None:
        yield
        return
    namespace.mkdir(parents=True, exist_ok=True)
    fd = os.open(namespace / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if exclusive:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FaerecError("an embedding job is using this cache namespace; compact it when the job has "
                                  "finished", path=namespace) from None
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("%s is being compacted; waiting for it to finish", namespace)
                fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
