"""Checkpoints that make a resumed run continue exactly where the killed one stopped.

checkpoint.pt (rewritten atomically after every epoch) holds everything the next epoch depends on: model and
optimiser state, the epoch just finished, the early-stopping state (best score, best epoch, best weights,
patience counter), the training history, the accumulated wall time, and every random state (torch CPU and
CUDA, numpy, python, and the trainer's own data generator for batch order and negatives). Loading uses
``torch.load(weights_only=True)``: only tensors and plain containers, never arbitrary pickled objects.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faerec.errors import FaerecError
from faerec.io import atomic_path

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


def capture_rng(data_generator: torch.Generator) -> dict[str, Any]:
    """Every random state as tensors / plain values (weights_only-loadable)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "data": data_generator.get_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_generator.set_state(state["data"])
    np_state = state["numpy"]
    np.random.set_state(
        (np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"], np_state["has_gauss"],
         np_state["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FaerecError("checkpoint not found", path=path) from None
    except Exception as exc:  # corrupt or foreign file: name it, do not dump a pickle traceback
        raise FaerecError(f"cannot read checkpoint ({type(exc).__name__}: {exc})", path=path) from None


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model weights (kept as the best weights)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
