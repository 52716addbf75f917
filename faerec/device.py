"""Device and precision choice, the one home for both the trainer and the local text encoders.

torch is imported inside the functions, so importing this module stays cheap for the CLI.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from faerec.errors import FaerecError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


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


def cuda_bf16(device: torch.device | str) -> bool:
    """True on a CUDA device with native bfloat16."""
    import torch

    device_type = device.type if hasattr(device, "type") else str(device).split(":")[0]
    return device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for a forward pass when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    import torch

    device_type = device.type if hasattr(device, "type") else str(device).split(":")[0]
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"
