"""faerec.memory's peak measurement: a run's peak is its own, not the largest earlier run's in the process."""

from __future__ import annotations

import sys

import pytest

from faerec import memory
from faerec.eval.document import peak_memory_mb

linux_proc = pytest.mark.skipif(memory.peak_resident_mb() is None or not sys.platform.startswith("linux"),
                                reason="needs /proc/self/status with VmHWM")


@linux_proc
def test_reset_peak_forgets_an_earlier_larger_allocation():
    before = memory.peak_resident_mb()
    block = bytearray(200 * 2**20)  # touched pages: calloc'd by CPython
    block[:: 4096] = b"\x01" * len(block[:: 4096])
    grown = memory.peak_resident_mb()
    assert grown >= before + 150
    del block
    memory.release_free_memory()
    if not memory.reset_peak_resident():
        pytest.skip("this kernel refuses /proc/self/clear_refs")
    after = memory.peak_resident_mb()
    assert after < grown - 150
    assert peak_memory_mb()["peak_rss_mb"] == pytest.approx(memory.peak_resident_mb(), abs=5)
