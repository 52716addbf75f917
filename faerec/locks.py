"""The one home for advisory file locks (flock): downloads and the embedding cache both use them.

The operating system drops a flock when its process dies, so a killed job never leaves a stale lock. Where
``fcntl`` does not exist (Windows) no lock is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockBusy(Exception):
    """The lock is held by another process and the caller asked not to wait."""


@contextmanager
def file_lock(path: Path, *, exclusive: bool, wait: bool, on_wait=None) -> Iterator[None]:
    """Hold a flock on ``path`` (created if needed). ``wait=False`` raises LockBusy at once when another
    process holds it; ``wait=True`` calls ``on_wait()`` once (e.g. to log) and then blocks until it is free."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockBusy(str(path)) from None
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
