"""faerec.memory's peak measurement: a run's peak is its own, not the largest earlier run's in the process."""

from __future__ import annotations

import mmap
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
    # An anonymous mapping gets fresh pages from the kernel; a bytearray could instead reuse free heap pages
    # that are already resident (configure_heap keeps blocks below 256 MB in the heap), and not grow RSS.
    block = mmap.mmap(-1, 200 * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):  # touch every page, without a large temporary
        block[offset] = 1
    grown = memory.peak_resident_mb()
    assert grown >= before + 150
    block.close()  # munmap: the pages go back to the kernel at once
    assert memory.peak_resident_mb() >= grown - 1  # a peak is kept after the memory is freed...
    assert memory.reset_peak_resident()
    assert memory.peak_resident_mb() < grown - 150  # ...until the next reset
    assert peak_memory_mb()["peak_rss_mb"] == pytest.approx(memory.peak_resident_mb(), abs=5)
