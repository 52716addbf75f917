"""bf16 detection in faerec.device: CPU flags, torch's capability, the micro-benchmark fallback, CUDA (mocked)."""

from __future__ import annotations

import pytest
import torch

from faerec import device
from faerec.device import Bf16Support, bf16_reason, cpuinfo_bf16, native_bf16, resolve_bf16
from faerec.errors import FaerecError

SAPPHIRE = "flags\t\t: fpu vme sse2 avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
COOPER = "flags\t\t: fpu vme sse2 avx2 avx512f avx512bw avx512_bf16\n"
AMX_ONLY = "flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n"
SKYLAKE = "flags\t\t: fpu vme sse2 avx2 avx512f avx512bw avx512_vnni\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sha1 bf16 i8mm\nCPU implementer\t: 0x41\n"


def cpuinfo(flag_line: str, cores: int = 2) -> str:
    return "".join(f"processor\t: {i}\nmodel name\t: Some CPU\n{flag_line}\n" for i in range(cores))


@pytest.fixture(autouse=True)
def fresh_detection():
    """Every test decides from scratch, and leaves no faked answer memoised for the rest of the session."""
    device.cpu_bf16_support.cache_clear()
    device._cuda_support.cache_clear()
    yield
    device.cpu_bf16_support.cache_clear()
    device._cuda_support.cache_clear()


@pytest.mark.parametrize(
    ("text", "native", "reason"),
    [
        (cpuinfo(SAPPHIRE), True, "cpu has avx512_bf16 and amx_bf16"),
        (cpuinfo(COOPER), True, "cpu has avx512_bf16"),
        (cpuinfo(AMX_ONLY), True, "cpu has amx_bf16"),
        (cpuinfo(SKYLAKE), False, "cpu has no avx512_bf16 or amx_bf16"),
    ],
)
def test_cpuinfo_flags_decide(text, native, reason):
    assert cpuinfo_bf16(text) == Bf16Support(native, reason)


def test_cpuinfo_without_x86_flags_decides_nothing():
    assert cpuinfo_bf16(ARM) is None  # "Features: ... bf16" on ARM is left to torch / the benchmark
    assert cpuinfo_bf16("") is None
    assert cpuinfo_bf16(None) is None
    assert cpuinfo_bf16("flags: avx512_bf16_lookalike\n") == Bf16Support(False, "cpu has no avx512_bf16 or amx_bf16")


def test_linux_cpuinfo_is_the_answer_and_nothing_is_benchmarked(monkeypatch):
    monkeypatch.setattr(device, "_read_cpuinfo", lambda: cpuinfo(SAPPHIRE))
    monkeypatch.setattr(device, "_torch_cpu_bf16", _fail)
    monkeypatch.setattr(device, "_benchmark_bf16", _fail)
    assert native_bf16("cpu") and native_bf16(torch.device("cpu"))
    assert bf16_reason("cpu") == "cpu has avx512_bf16 and amx_bf16"
    device.cpu_bf16_support.cache_clear()
    monkeypatch.setattr(device, "_read_cpuinfo", lambda: cpuinfo(SKYLAKE))
    assert not native_bf16("cpu")
    assert resolve_bf16("auto", "cpu") == (False, "cpu has no avx512_bf16 or amx_bf16")


@pytest.mark.parametrize(
    ("machine", "capability", "probe", "expected"),
    [
        ("x86_64", "AVX2", True, Bf16Support(False, "cpu capability AVX2 (no avx512_bf16 or amx_bf16)")),
        ("AMD64", "DEFAULT", True, Bf16Support(False, "cpu capability DEFAULT (no avx512_bf16 or amx_bf16)")),
        ("x86_64", "AVX512", True, Bf16Support(True, "cpu has avx512_bf16 (torch cpuinfo)")),
        ("x86_64", "AVX512", False, Bf16Support(False, "cpu has AVX512 but no avx512_bf16 (torch cpuinfo)")),
        ("x86_64", "AVX512", None, None),  # a torch without the probe: not definite
        ("arm64", "DEFAULT", True, None),  # ARM: capability says nothing about bf16
    ],
)
def test_torch_capability_where_definite(monkeypatch, machine, capability, probe, expected):
    monkeypatch.setattr(device.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    if probe is None:
        monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: probe, raising=False)
    assert device._torch_cpu_bf16() == expected


def test_other_os_falls_back_to_torch_then_to_a_memoised_benchmark(monkeypatch):
    monkeypatch.setattr(device, "_read_cpuinfo", lambda: None)  # not Linux, or no /proc
    monkeypatch.setattr(device, "_torch_cpu_bf16", lambda: None)
    calls = []

    def timing(bf16: bool, **_):
        calls.append(bf16)
        return 0.5 if bf16 else 1.0  # bf16 twice as fast

    monkeypatch.setattr(device, "_time_matmul", timing)
    assert native_bf16("cpu")
    assert bf16_reason("cpu") == "cpu micro-benchmark: bf16 matmul 2.00x fp32 speed, faster"
    assert sorted(calls) == [False] * 3 + [True] * 3 and calls[:2] == [False, True]  # interleaved
    for _ in range(3):
        assert native_bf16("cpu") and resolve_bf16("auto", "cpu")[0]
    assert len(calls) == 6  # memoised: once per process


def test_benchmark_needs_a_clear_win(monkeypatch):
    monkeypatch.setattr(device, "_time_matmul", lambda bf16, **_: 0.9 if bf16 else 1.0)
    assert device._benchmark_bf16() == Bf16Support(False, "cpu micro-benchmark: bf16 matmul 1.11x fp32 speed, "
                                                          "not clearly faster")
    monkeypatch.setattr(device, "_time_matmul", lambda bf16, **_: 3.0 if bf16 else 1.0)  # emulated: slower
    assert not device._benchmark_bf16().native


def test_benchmark_really_runs():
    support = device._benchmark_bf16()
    assert support.reason.startswith("cpu micro-benchmark: bf16 matmul ")


def _fake_cuda(monkeypatch, *, available: bool, native: bool, name: str = "NVIDIA H200"):
    seen = []

    def is_bf16_supported(including_emulation: bool = True):
        seen.append(including_emulation)
        return native or including_emulation  # torch >= 2.3: emulation counts unless asked not to

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: name)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    return seen


def test_cuda_with_native_bf16(monkeypatch):
    seen = _fake_cuda(monkeypatch, available=True, native=True)
    assert native_bf16("cuda") and native_bf16(torch.device("cuda", 0))
    assert bf16_reason("cuda:0") == "cuda device NVIDIA H200 has native bf16"
    assert resolve_bf16(None, "cuda") == (True, "cuda device NVIDIA H200 has native bf16")
    assert seen and not any(seen)  # emulated bf16 was never accepted


def test_cuda_with_emulated_bf16_only_stays_fp32(monkeypatch):
    _fake_cuda(monkeypatch, available=True, native=False, name="Tesla T4")
    assert not native_bf16("cuda")
    assert bf16_reason("cuda") == "cuda device Tesla T4 has no native bf16"
    assert not device.cuda_bf16("cuda")


def test_cuda_without_a_device(monkeypatch):
    _fake_cuda(monkeypatch, available=False, native=True)
    assert device.bf16_support("cuda") == Bf16Support(False, "torch sees no CUDA device")


def test_cpu_answer_does_not_depend_on_cuda(monkeypatch):
    _fake_cuda(monkeypatch, available=True, native=True)
    monkeypatch.setattr(device, "_read_cpuinfo", lambda: cpuinfo(SKYLAKE))
    assert native_bf16("cuda") and not native_bf16("cpu")


def test_resolve_bf16_for_the_trainer(monkeypatch):
    monkeypatch.setattr(device, "_read_cpuinfo", lambda: cpuinfo(COOPER))
    assert resolve_bf16(True, "cpu") == (True, "requested")
    assert resolve_bf16(False, "cpu") == (False, "requested")
    assert resolve_bf16("off", "cpu") == (False, "requested")
    assert resolve_bf16("auto", torch.device("cpu")) == (True, "cpu has avx512_bf16")
    with pytest.raises(FaerecError, match="bf16 must be auto, true or false"):
        resolve_bf16("maybe", "cpu")


def test_this_machine_gets_a_definite_answer():
    support = device.bf16_support("cpu")
    assert isinstance(support.native, bool) and support.reason


def _fail(*_args, **_kwargs):
    raise AssertionError("should not be consulted")
