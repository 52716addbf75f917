"""faerec.allocator: which malloc the `faerec` command re-executes itself under, and that it really does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faerec import allocator


def _libs(tmp_path: Path, *names: str) -> tuple[str, ...]:
    for name in names:
        (tmp_path / name).write_bytes(b"")
    return (str(tmp_path),)


def test_auto_prefers_tcmalloc_then_jemalloc_then_the_c_library(tmp_path):
    both = _libs(tmp_path, "libjemalloc.so.2", "libtcmalloc_minimal.so.4")
    assert allocator.choose("auto", both).endswith("libtcmalloc_minimal.so.4")
    assert allocator.choose("jemalloc", both).endswith("libjemalloc.so.2")
    (tmp_path / "je").mkdir()
    assert allocator.choose("auto", _libs(tmp_path / "je", "libjemalloc.so.2")).endswith("libjemalloc.so.2")
    (tmp_path / "none").mkdir()
    assert allocator.choose("auto", (str(tmp_path / "none"),)) is None
    assert allocator.choose("system", both) is None


def test_a_named_allocator_that_is_missing_or_unknown_is_an_error_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match="FAEREC_ALLOCATOR=tcmalloc: no libtcmalloc"):
        allocator.choose("tcmalloc", (str(tmp_path),))
    with pytest.raises(ValueError, match="FAEREC_ALLOCATOR='mimalloc'"):
        allocator.choose("mimalloc", (str(tmp_path),))


def test_in_use_reads_ld_preload():
    assert allocator.in_use("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4") == "tcmalloc"
    assert allocator.in_use("/x/libasan.so:/usr/lib/libjemalloc.so.2") == "jemalloc"
    assert allocator.in_use("") == "system"


@pytest.mark.skipif(not sys.platform.startswith("linux") or allocator.choose("auto") is None,
                    reason="no tcmalloc or jemalloc installed (scripts/setup.sh installs libtcmalloc-minimal4)")
@pytest.mark.parametrize("setting", ["auto", "system"])
def test_the_command_re_executes_itself_once_under_the_allocator(setting):
    code = ("from faerec.allocator import reexec_under_allocator, in_use; reexec_under_allocator(); "
            "import os; print(in_use(), os.environ.get('_FAEREC_ALLOCATOR_EXEC', '-'))")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "_FAEREC_ALLOCATOR_EXEC")}
    env["FAEREC_ALLOCATOR"] = setting
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(allocator.__file__).resolve().parents[1]).stdout.split()
    expected = Path(allocator.choose("auto")).name.split(".so")[0].removeprefix("lib").split("_")[0]
    assert out == ([expected, "1"] if setting == "auto" else ["system", "-"])
