"""One training epoch, and the early-stopping bookkeeping that the checkpoint carries across restarts."""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from faerec.device import autocast, similarity_bf16
from faerec.errors import FaerecError
from faerec.train.distributed import DataParallel
from faerec.train.negatives import NegativeSampler
from faerec.train.sequences import TrainingExamples


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    examples: TrainingExamples,
    sampler: NegativeSampler,
    *,
    epoch: int,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
    bf16_similarity: bool = False,
    progress: bool = True,
    parallel: DataParallel | None = None,
) -> dict[str, float]:
    """Train on every example once, in an order drawn from the sampler's generator; returns mean loss parts.

    A batch is an index gather from the pre-tensorised examples plus one vectorised negative draw.
    ``epoch`` is 0-based (it drives FAERec's curriculum). The trainer bounds the heap between epochs
    (faerec.memory.HeapGuard); nothing here trims it, since a trim mid-epoch is paid back in page faults.
    ``bf16_similarity``: bf16 operands for the alignment losses' similarity matmuls (faerec.device).
    With ``parallel`` (faerec.train.distributed), ``batch_size`` is the global batch: every rank draws the same
    order and negatives, trains on its rows of each batch through DDP, and the loss parts are summed over ranks.
    """
    model.train()
    order = torch.randperm(len(examples), generator=sampler.generator)
    n_batches = math.ceil(len(order) / batch_size)
    sums: dict[str, float] = defaultdict(float)
    loss_of = model.training_loss if parallel is None else parallel.loss
    shown = 0.0  # this process's running loss, for the progress bar
    started = time.perf_counter()
    bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}", unit="batch", file=sys.stderr, disable=not progress,
               leave=False, mininterval=1.0, dynamic_ncols=True)
    with bar:
        for batch, start in enumerate(range(0, len(order), batch_size)):
            rows = order[start : start + batch_size]
            targets = examples.targets[rows]
            users = examples.users[rows]
            negatives = sampler.sample(users, targets != 0)
            inputs, share = examples.inputs[rows], 1.0
            if parallel is not None:
                inputs, targets, negatives, users, share = parallel.shard(inputs, targets, negatives, users)
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            negatives = negatives.to(device, non_blocking=True)
            users = users.to(device, non_blocking=True)
            with autocast(device, bf16), similarity_bf16(bf16_similarity):
                loss, parts = loss_of(inputs, targets, negatives, epoch, users=users)
            value = float(loss.detach())
            if parallel is not None:
                loss = loss * parallel.scale(share)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if not math.isfinite(value):
                raise FaerecError(f"training loss became {value} at epoch {epoch + 1}, batch {batch + 1}")
            sums["loss"] += share * value
            shown += value
            for name, part in parts.items():
                sums[name] += share * float(part)
            bar.update(1)
            seconds = time.perf_counter() - started
            bar.set_postfix(loss=f"{shown / (batch + 1):.4f}",
                            seq_s=f"{(start + len(rows)) / max(seconds, 1e-9):.0f}", refresh=False)
    if parallel is not None:
        sums = parallel.reduce(sums)
    return {name: total / max(n_batches, 1) for name, total in sums.items()}


@dataclass
class EarlyStopping:
    """Model selection on one validation metric, maximised; stops after ``patience`` non-improving checks."""

    best_score: float = float("-inf")
    best_epoch: int = 0  # 1-based; 0 = no validation yet
    bad_checks: int = 0
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def update(self, score: float, epoch: int, state_fn) -> bool:
        """Record a validation score; ``state_fn()`` gives the weights to keep. True if it improved."""
        if score > self.best_score:  # NaN never improves
            self.best_score, self.best_epoch, self.bad_checks = score, epoch, 0
            self.best_state = state_fn()
            return True
        self.bad_checks += 1
        return False

    def should_stop(self, patience: int) -> bool:
        return self.bad_checks >= patience

    def to_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad_checks": self.bad_checks,
                "best_state": self.best_state}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EarlyStopping:
        return cls(float(values["best_score"]), int(values["best_epoch"]), int(values["bad_checks"]),
                   values["best_state"])
