"""Run the `faerec` command under a size-class allocator (tcmalloc, else jemalloc) where one is installed.

Why: PyTorch on CPU allocates through the C library's malloc, and a training step's tensors change size every
batch (tokens, distinct items). glibc's heap fragments under that pattern: in a single-threaded SASRec+FAERec
run on Beauty the peak resident size grew from 1.22 to 1.43 GB over 6 epochs and the epoch's CPU time from
20.8 to 24.2 s, although the trainer trims the heap once per epoch (faerec.memory). In the same conditions,
tcmalloc kept the peak at 0.95-1.02 GB and the epochs at 16.7-18.5 s; jemalloc at 0.86-0.90 GB and 17.9-22.7 s
(docs/PERFORMANCE.md has the command). Allocators with size classes reuse freed blocks of similar size
instead of splitting one heap.

How: an allocator must be loaded before anything else, so the command re-executes itself once with the
library in LD_PRELOAD (``reexec_under_allocator``, called first thing by the installed `faerec` command).
Child processes (experiment runs, DDP ranks, Prefect workers started by `faerec serve`) inherit it.
``FAEREC_ALLOCATOR`` chooses: ``auto`` (default: tcmalloc, else jemalloc, else the C library's), ``tcmalloc``,
``jemalloc`` or ``system``. The libraries come from the OS (Debian/Ubuntu: libtcmalloc-minimal4,
libjemalloc2; scripts/setup.sh installs the first where it can). Linux only; elsewhere nothing changes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "FAEREC_ALLOCATOR"
_DONE = "_FAEREC_ALLOCATOR_EXEC"  # set in the re-executed process, so it never re-executes twice
CHOICES = ("auto", "tcmalloc", "jemalloc", "system")
LIBRARIES = {
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
    "jemalloc": ("libjemalloc.so.2",),
}
SEARCH_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
               "/usr/local/lib")  # Linux only: the re-exec is Linux-only


def find_library(kind: str, search_dirs: tuple[str, ...] = SEARCH_DIRS) -> str | None:
    """The first installed shared library of ``kind`` ("tcmalloc" or "jemalloc"), or None."""
    for directory in search_dirs:
        for name in LIBRARIES[kind]:
            path = Path(directory) / name
            if path.is_file():
                return str(path)
    return None


def in_use(preload: str | None = None) -> str:
    """"tcmalloc", "jemalloc" or "system": what LD_PRELOAD of this process names."""
    preload = os.environ.get("LD_PRELOAD", "") if preload is None else preload
    for kind, names in LIBRARIES.items():
        if any(name.split(".so")[0] in preload for name in names):
            return kind
    return "system"


def choose(setting: str | None = None, search_dirs: tuple[str, ...] = SEARCH_DIRS) -> str | None:
    """The library to preload for ``setting`` (default $FAEREC_ALLOCATOR, else auto), or None for the C
    library's malloc. A named allocator that is not installed raises ValueError naming the setting."""
    setting = (os.environ.get(ENV) or "auto") if setting is None else setting
    if setting not in CHOICES:
        raise ValueError(f"{ENV}={setting!r}: expected one of {', '.join(CHOICES)}")
    if setting == "system":
        return None
    kinds = ("tcmalloc", "jemalloc") if setting == "auto" else (setting,)
    for kind in kinds:
        path = find_library(kind, search_dirs)
        if path is not None:
            return path
    if setting != "auto":
        raise ValueError(f"{ENV}={setting}: no {' or '.join(LIBRARIES[setting])} in {', '.join(search_dirs)} "
                         "(Debian/Ubuntu: apt-get install libtcmalloc-minimal4 / libjemalloc2)")
    return None


def reexec_under_allocator() -> None:
    """Re-execute this command with the chosen allocator preloaded; returns when there is nothing to do (not
    Linux, already preloaded or re-executed, ``system``, or no allocator installed)."""
    if not sys.platform.startswith("linux") or os.environ.get(_DONE) or in_use() != "system":
        return
    try:
        path = choose()
    except ValueError as exc:
        print(f"faerec: {exc}; using the C library's malloc", file=sys.stderr)
        return
    if path is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [path, env.get("LD_PRELOAD")]))
    env[_DONE] = "1"
    argv = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    except OSError as exc:  # keep going without it rather than fail the command
        print(f"faerec: could not re-execute under {path} ({exc}); using the C library's malloc", file=sys.stderr)
