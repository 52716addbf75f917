"""Validation of one epoch in a second thread while the next epoch trains.

Why: runs train side by side, one torch thread each (faerec.cores), and the shorter run ends first; the
longer one then leaves a core idle for the rest of its run (57 of 219 s in the main job) while it still
validates after every epoch on the same thread it trains on. Here the validation of epoch e runs on that
idle core, beside the training of epoch e + 1.

Why no result changes:
- the validation scores a copy of epoch e's weights (``snapshot``), so training never changes what it sees;
- every torch op computes the same way on whichever thread calls it (the thread count is process-wide, and
  a second Python thread uses the same count), so the validation metrics are those of a validation in line;
- the trainer applies each validation, early-stopping decision, history line and checkpoint in epoch order,
  and the checkpoint of epoch e holds the model, optimiser and random states captured at the end of epoch e.
  A run that stops after epoch e drops the epoch e + 1 it trained meanwhile, as if it had never trained it.
The cost is a second copy of the model's weights (its frozen inputs are shared), a copy of the model and
optimiser state per validated epoch (~25 MB on Beauty) and, if the process is killed, up to two epochs to
redo on resume instead of one.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from faerec.cores import affinity_cores
from faerec.eval.evaluator import Evaluator
from faerec.runs import checkpoint


def overlap_wanted(requested: bool | None, device: torch.device, distributed: bool) -> bool:
    """``requested`` if given, else on when it can pay: a CPU run in one process on one torch thread, on a
    machine where this process may use more than one core. Never with data-parallel ranks (rank 0 validates
    while the others wait in a collective)."""
    if distributed or device.type != "cpu":
        return False
    if requested is not None:
        return requested
    # the affinity, not usable_cores: a side-by-side run's OMP_NUM_THREADS=1 is its share, not the machine's
    return torch.get_num_threads() == 1 and affinity_cores() > 1


def snapshot(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data_generator: torch.Generator) -> dict:
    """Copies of what the checkpoint of the epoch just trained holds: weights, optimiser state, random states."""
    return {"model": checkpoint.cpu_state(model), "optimizer": copy.deepcopy(optimizer.state_dict()),
            "rng": checkpoint.capture_rng(data_generator)}


class ValidationThread:
    """``submit(weights)`` validates those weights on a private copy of the model in one background thread."""

    def __init__(self, model: torch.nn.Module, evaluator: Evaluator) -> None:
        # Buffers outside the state dict (FAERec's frozen LLM table: 6 GB for a million items of 1,536-d
        # embeddings) are inputs that training never changes, and ``submit``'s load_state_dict never writes
        # them: the copy shares them instead of doubling them. Parameters and state-dict buffers are copied.
        saved = model.state_dict(keep_vars=True)
        shared = {id(buffer): buffer for name, buffer in model.named_buffers() if name not in saved}
        self._model = copy.deepcopy(model, memo=shared)
        self._evaluator = evaluator
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faerec-validation")
        self._running: Future | None = None

    def submit(self, weights: dict[str, torch.Tensor]) -> Future[dict[str, Any]]:
        if self._running is not None and not self._running.done():
            raise RuntimeError("ValidationThread: the previous validation is still running")
        self._model.load_state_dict(weights)
        self._running = self._pool.submit(self._evaluator.evaluate, self._model, "valid")
        return self._running

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
