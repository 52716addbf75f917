"""Keep the resident memory of long CPU runs close to what they actually use, without paying page faults.

PyTorch on CPU allocates through the C library's malloc. Two glibc behaviours hurt a training loop whose big
tensors change size every batch (batches differ in tokens and distinct items):
- Blocks above the dynamic mmap threshold (up to 32 MB) get fresh pages from the kernel on every allocation,
  and the heap's top is trimmed back automatically. Each new page is a first-touch page fault; on a VM
  (Firecracker: ~8 us a page here) a 27 MB InfoNCE matrix then took 50 ms to zero instead of 3 ms.
  ``configure_heap`` fixes both thresholds (mallopt), so freed blocks stay in the heap for the next batch.
- Freed blocks of slightly different sizes fragment the heap: on Beauty a SASRec+FAERec process that uses
  ~0.65 GB between batches grows by ~80 MB an epoch. ``malloc_trim(0)`` hands free pages back, but every
  page handed back is faulted in again by the next allocation: trimming after every batch made epochs ~40 %
  slower, and trimming whenever resident memory grew mid-epoch made epoch times creep from 10 s to 13 s.

``HeapGuard`` trims only when the resident size has grown by ``slack_mb`` since the last trim, and the trainer
asks it once per epoch (after validation), so a trim costs one re-fault of the working set per epoch at most.
Elsewhere (macOS, musl, Windows) ``configure_heap``, the guard and ``release_free_memory`` do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache

DEFAULT_SLACK_MB = 384  # above one training step's transient (~300 MB on Beauty), so a trim means real build-up
# mallopt parameters (glibc malloc.h) and the values configure_heap sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 256 * 2**20  # blocks below this come from the heap (fixed: no dynamic adjustment)
TRIM_THRESHOLD_BYTES = 2**31 - 1  # no automatic trimming of the heap top; HeapGuard decides when to trim
_STATM = "/proc/self/statm"
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


@lru_cache(maxsize=1)
def _malloc_trim():
    c = libc()
    return getattr(c, "malloc_trim", None) if c is not None else None


@lru_cache(maxsize=1)
def libc():
    """The C library through ctypes (cached), or None where it cannot be found or loaded."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


@lru_cache(maxsize=1)
def configure_heap() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once); True if the C library accepted them."""
    c = libc()
    mallopt = getattr(c, "mallopt", None) if c is not None else None
    if mallopt is None or _malloc_trim() is None:  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                  TRIM_THRESHOLD_BYTES))


def release_free_memory() -> bool:
    """True if the C library was asked to return free heap pages (glibc), False where it cannot be."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def reset_peak_resident() -> bool:
    """Start a new peak-resident-memory measurement for this process (Linux: VmHWM := current RSS).

    A process that trains several runs one after another (``faerec experiment``) would otherwise report the
    largest earlier run's peak for every later run. True if the kernel accepted the reset."""
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")  # proc(5): "5" resets the peak resident set size to the current one
        return True
    except OSError:
        return False


def peak_resident_mb() -> float | None:
    """Peak resident set size since the process started or since ``reset_peak_resident``, in MB (None
    where /proc/self/status has no VmHWM)."""
    try:
        with open(_STATUS) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def resident_mb() -> float | None:
    """This process's resident set size in MB, or None where /proc is not available."""
    try:
        with open(_STATM) as fh:
            return int(fh.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


class HeapGuard:
    """``check()`` trims the heap when resident memory grew by ``slack_mb`` since the guard was made or last
    trimmed; call it where a trim is cheap (between epochs, between evaluation batches)."""

    def __init__(self, slack_mb: float = DEFAULT_SLACK_MB) -> None:
        self.slack_mb = slack_mb
        self.enabled = slack_mb > 0 and _malloc_trim() is not None and resident_mb() is not None
        self.trims = 0
        self.baseline = resident_mb() if self.enabled else None

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
