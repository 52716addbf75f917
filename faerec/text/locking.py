"""A per-namespace lock between jobs that read a cache namespace (``embed``) and compaction, which deletes
the parts it merged.

Embedding jobs take the lock shared, so any number of them can append side by side; ``cache compact`` takes it
exclusive and refuses at once while an embedding job holds it (it would delete parts that job has indexed
and will read back). An embedding job that starts during a compaction waits for it: compactions are short.
The lock is a flock (faerec.locks) on ``<namespace>/.lock``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faerec.errors import FaerecError
from faerec.locks import LockBusy, file_lock

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


@contextmanager
def namespace_lock(namespace: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the namespace's lock: shared (waits for a running compaction) or exclusive (fails at once)."""
    try:
        with file_lock(namespace / LOCK_NAME, exclusive=exclusive, wait=not exclusive,
                       on_wait=lambda: log.warning("%s is being compacted; waiting for it to finish", namespace)):
            yield
    except LockBusy:
        raise FaerecError("an embedding job is using this cache namespace; compact it when the job has "
                          "finished", path=namespace) from None
