"""Device and precision choice, the one home for both the trainer and the local text encoders.

torch is imported inside the functions, so importing this module stays cheap for the CLI.

Precision ``auto`` means bf16 where the device runs bf16 natively and fp32 elsewhere (``native_bf16``,
``bf16_reason``): a CUDA device with native bf16 (``torch.cuda.is_bf16_supported`` without emulation), or a CPU
with ``avx512_bf16`` or ``amx_bf16``. On Linux the CPU flags come from /proc/cpuinfo; elsewhere from torch
(``get_cpu_capability`` and its cpuinfo probes) when they say something definite, else from a one-off
micro-benchmark (a bf16 vs fp32 matmul; bf16 only if clearly faster), memoised per process.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faerec.errors import FaerecError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")

# x86 flags (as /proc/cpuinfo spells them) of instructions that compute in bf16: AVX512-BF16 (Cooper Lake,
# Zen 4 and later) and AMX-BF16 (Sapphire Rapids and later). Without them bf16 is emulated and slower.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The micro-benchmark picks bf16 only when it is at least this much faster than fp32.
BENCH_MIN_SPEEDUP = 1.25
_X86 = ("x86_64", "amd64", "x86", "i386", "i686")


def resolve_device(name: str | None) -> torch.device:
    """"auto" (or empty): CUDA when torch sees one, else CPU; "cuda[:N]" fails clearly without CUDA."""
    import torch

    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise FaerecError(f"unknown device {name!r}; use auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FaerecError(f"device {name!r} was requested but torch sees no CUDA device")
    return torch.device(name)


def _device_type(device: torch.device | str) -> str:
    return device.type if hasattr(device, "type") else str(device).split(":")[0]


def cuda_bf16(device: torch.device | str) -> bool:
    """True on a CUDA device with native bfloat16 (compute capability 8.0+; emulated bf16 does not count)."""
    import torch

    if _device_type(device) != "cuda" or not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # an older torch has no emulation flag (and reports native support only)
        return bool(torch.cuda.is_bf16_supported())


# -- bf16: is it native here? ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bf16Support:
    native: bool
    reason: str  # e.g. "cpu has avx512_bf16 and amx_bf16", "cuda device NVIDIA T4 has no native bf16"


def native_bf16(device: torch.device | str) -> bool:
    """True where ``device`` runs bf16 natively (precision "auto" then means bf16)."""
    return bf16_support(device).native


def bf16_reason(device: torch.device | str) -> str:
    """Why ``native_bf16`` says what it says, for a log line: "precision bf16 (<reason>)"."""
    return bf16_support(device).reason


def bf16_support(device: torch.device | str) -> Bf16Support:
    device_type = _device_type(device)
    if device_type == "cuda":
        return _cuda_support(str(device))
    if device_type == "cpu":
        return cpu_bf16_support()
    return Bf16Support(False, f"{device_type} device: bf16 is not probed there")


@functools.cache
def _cuda_support(device: str) -> Bf16Support:
    import torch

    if not torch.cuda.is_available():
        return Bf16Support(False, "torch sees no CUDA device")
    index = torch.device(device).index
    name = torch.cuda.get_device_name(torch.cuda.current_device() if index is None else index)
    if cuda_bf16(device):
        return Bf16Support(True, f"cuda device {name} has native bf16")
    return Bf16Support(False, f"cuda device {name} has no native bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_support() -> Bf16Support:
    """This machine's CPU, decided once per process (the micro-benchmark fallback runs at most once)."""
    from_flags = cpuinfo_bf16(_read_cpuinfo())
    if from_flags is not None:
        return from_flags
    from_torch = _torch_cpu_bf16()
    if from_torch is not None:
        return from_torch
    return _benchmark_bf16()


def cpuinfo_bf16(text: str | None) -> Bf16Support | None:
    """Decide from /proc/cpuinfo text; None when it lists no x86 flags (other architectures, other OSes)."""
    flags: set[str] = set()
    seen = False
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            seen = True
            flags.update(value.split())
    if not seen:
        return None
    found = [flag for flag in CPU_BF16_FLAGS if flag in flags]
    if found:
        return Bf16Support(True, "cpu has " + " and ".join(found))
    return Bf16Support(False, "cpu has no " + " or ".join(CPU_BF16_FLAGS))


def _read_cpuinfo() -> str | None:
    if platform.system() != "Linux":
        return None
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None


def _torch_cpu_bf16() -> Bf16Support | None:
    """What torch knows about the CPU, where it is definite (x86 only; ARM and others are benchmarked)."""
    import torch

    if platform.machine().lower() not in _X86:
        return None
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001 - an old torch or an odd build: no answer, not an error
        capability = ""
    if capability in ("AVX2", "AVX", "DEFAULT", "NO AVX"):  # no AVX-512 at all, so neither bf16 extension
        return Bf16Support(False, f"cpu capability {capability} (no avx512_bf16 or amx_bf16)")
    # AVX512 alone is ambiguous (Skylake-X has it without bf16); torch's own cpuinfo probes settle it.
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if capability == "AVX512" and probe is not None:
        try:
            if probe():
                return Bf16Support(True, "cpu has avx512_bf16 (torch cpuinfo)")
            return Bf16Support(False, "cpu has AVX512 but no avx512_bf16 (torch cpuinfo)")
        except Exception:  # noqa: BLE001
            return None
    return None


def _benchmark_bf16() -> Bf16Support:
    """bf16 only if a bf16 matmul is clearly faster than the same fp32 one (interleaved best-of; well under 1 s
    on a native CPU, a few seconds at most where bf16 is emulated). Operands are cast beforehand: this times the
    kernels, which is what native bf16 changes (autocast's per-call casts cost the same on every CPU)."""
    fp32 = bf16 = float("inf")
    for _ in range(3):  # interleaved, so a passing load spike does not decide
        fp32, bf16 = min(fp32, _time_matmul(bf16=False)), min(bf16, _time_matmul(bf16=True))
    speedup = fp32 / max(bf16, 1e-9)
    native = speedup >= BENCH_MIN_SPEEDUP
    verdict = "faster" if native else "not clearly faster"
    return Bf16Support(native, f"cpu micro-benchmark: bf16 matmul {speedup:.2f}x fp32 speed, {verdict}")


def _time_matmul(bf16: bool, rows: int = 512, width: int = 384, repeats: int = 3) -> float:
    """Seconds for ``repeats`` [rows, width] x [width, 4 width] products (a transformer MLP's first layer)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, width, generator=generator)
    w = torch.randn(width, 4 * width, generator=generator)
    if bf16:
        x, w = x.bfloat16(), w.bfloat16()
    with torch.inference_mode():
        torch.mm(x, w)  # warm-up: kernel selection
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(x, w)
        return time.perf_counter() - start


def resolve_bf16(value: bool | str | None, device: torch.device | str) -> tuple[bool, str]:
    """A trainer's bf16 switch: True/False as given, "auto" (or None) as ``native_bf16(device)``; with the reason.

    For a ``--bf16 auto`` choice: resolve it before the run config is written, so the config records the
    precision the run actually used.
    """
    if isinstance(value, bool):
        return value, "requested"
    text = (value or "auto").strip().lower()
    if text in ("1", "true", "yes", "on", "bf16"):
        return True, "requested"
    if text in ("0", "false", "no", "off", "fp32"):
        return False, "requested"
    if text != "auto":
        raise FaerecError(f"bf16 must be auto, true or false, got {value!r}")
    support = bf16_support(device)
    return support.native, support.reason


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for a forward pass when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=_device_type(device), dtype=torch.bfloat16)


# -- bf16 operands for the alignment similarity matmuls -------------------------------------------------------
# The [U, U] similarity matmul of an InfoNCE over a batch's distinct items is the largest kernel of a FAERec
# training step (~3,000 x 128 x 3,000 per Beauty batch, forward and two backward products). With bf16
# operands and float32 accumulation it runs ~6x faster where bf16 is native, at a logit error of ~1e-3 relative.
# Whole-model autocast is not the same thing: at hidden 128 its casts and bf16 element-wise ops cost more than
# it saves on a CPU. The trainer sets this scope around a training step (``similarity_bf16``); the losses ask.
SIMILARITY_PRECISIONS = ("auto", "fp32", "bf16")
_SIMILARITY_BF16: contextvars.ContextVar[bool] = contextvars.ContextVar("faerec_similarity_bf16", default=False)


def resolve_similarity_precision(value: str, device: torch.device | str) -> tuple[str, str]:
    """("bf16" | "fp32", reason) for a TrainConfig ``similarity_precision``: auto = bf16 where native."""
    if value not in SIMILARITY_PRECISIONS:
        raise FaerecError(f"similarity_precision must be one of {list(SIMILARITY_PRECISIONS)}, got {value!r}")
    if value != "auto":
        return value, "requested"
    support = bf16_support(device)
    return ("bf16" if support.native else "fp32"), support.reason


@contextlib.contextmanager
def similarity_bf16(enabled: bool):
    """Within this scope, similarity matmuls that ask ``similarity_in_bf16()`` take bf16 operands."""
    token = _SIMILARITY_BF16.set(bool(enabled))
    try:
        yield
    finally:
        _SIMILARITY_BF16.reset(token)


def similarity_in_bf16() -> bool:
    return _SIMILARITY_BF16.get()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"
