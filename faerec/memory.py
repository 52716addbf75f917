"""Keep the resident memory of long CPU runs close to what they actually use.

PyTorch on CPU allocates through the C library's malloc. With glibc, blocks freed after a batch stay in the
heap, and tensors of slightly different sizes every batch (batches differ in tokens and distinct items)
fragment it: on Beauty a SASRec+FAERec process that uses ~0.65 GB between batches reached ~2.0 GB over 30
epochs. ``malloc_trim(0)`` hands the free pages back to the OS, but every page handed back is faulted in again
by the next allocation, so trimming after every batch made epochs ~40 % slower.

``HeapGuard`` trims only when the resident size has grown by ``slack_mb`` since the last trim: a cheap check
(one read of /proc/self/statm) per batch, a trim only when fragmentation has actually piled up. Elsewhere
(macOS, musl, Windows) the guard and ``release_free_memory`` do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache

DEFAULT_SLACK_MB = 384  # above one training step's transient (~300 MB on Beauty), so a trim means real build-up
_STATM = "/proc/self/statm"
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """True if the C library was asked to return free heap pages (glibc), False where it cannot be."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def resident_mb() -> float | None:
    """This process's resident set size in MB, or None where /proc is not available."""
    try:
        with open(_STATM) as fh:
            return int(fh.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


class HeapGuard:
    """Call ``check()`` once per batch; it trims the heap when resident memory grew by ``slack_mb``."""

    def __init__(self, slack_mb: float = DEFAULT_SLACK_MB) -> None:
        self.slack_mb = slack_mb
        self.enabled = slack_mb > 0 and _malloc_trim() is not None and resident_mb() is not None
        self.trims = 0
        self.baseline = self._trim() if self.enabled else None

    def _trim(self) -> float | None:
        release_free_memory()
        self.trims += 1
        return resident_mb()

    def check(self) -> None:
        if not self.enabled:
            return
        now = resident_mb()
        if now is not None and self.baseline is not None and now - self.baseline > self.slack_mb:
            self.baseline = self._trim()
