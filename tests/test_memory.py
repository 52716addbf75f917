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
    if not memory.reset_peak_resident():  # the peak so far (other tests in this process) no longer counts
        pytest.skip("this kernel refuses /proc/self/clear_refs")
    before = memory.peak_resident_mb()
    block = bytearray(200 * 2**20)
    block[::4096] = b"\x01" * len(block[::4096])  # touch every page
    grown = memory.peak_resident_mb()
    assert grown >= before + 150
    del block
    memory.release_free_memory()
    assert memory.peak_resident_mb() >= grown - 1  # a peak is kept after the memory is freed...
    assert memory.reset_peak_resident()
    assert memory.peak_resident_mb() < grown - 150  # ...until the next reset
    assert peak_memory_mb()["peak_rss_mb"] == pytest.approx(memory.peak_resident_mb(), abs=5)
