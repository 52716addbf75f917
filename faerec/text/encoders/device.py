"""Torch device and precision choice shared by the local encoders (torch is imported only when needed)."""

from __future__ import annotations

import contextlib

from faerec.errors import FaerecError
from faerec.text.encoders.base import resolve_precision


def pick_device(requested: str | None) -> str:
    import torch

    if requested in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise FaerecError(f"device {requested!r} requested but CUDA is not available")
    return requested


def pick_precision(precision: str | None, device: str) -> str:
    import torch

    device_type = device.split(":")[0]
    bf16 = device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return resolve_precision(precision, device_type, bf16)


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass; a no-op for fp32."""
    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
