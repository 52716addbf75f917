"""Device choice and mixed precision: CUDA when asked for or available, optional bfloat16 autocast."""

from __future__ import annotations

import contextlib

import torch

from faerec.errors import FaerecError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FaerecError("--device cuda was requested but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise FaerecError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for the training forward pass when asked for; a no-op context otherwise."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"
