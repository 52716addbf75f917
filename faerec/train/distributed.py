"""Multi-process data-parallel training with torch DDP (gloo on CPU, NCCL on CUDA), launched by torchrun.

    torchrun --nproc-per-node N -m faerec.train.ddp DIR [the flags of `faerec train`]

faerec.train.ddp sets up the process group (``init``) and calls the ordinary ``train_run``, which asks
``current()`` which rank it is and takes the few hooks below; without a process group it runs exactly as before.

- The data stream is the single-process one. ``cfg.batch_size`` is the GLOBAL batch: every rank draws the same
  epoch order and the same negatives from the shared seeded data generator, then takes its rows of each global
  batch (``rows[rank::world]``, ``shard``).
- Gradients. DDP averages the ranks' gradients, so rank r's loss is scaled by ``world * n_r / n`` (n_r scored
  tokens of its rows, n of the global batch, counted from the targets). The BCE loss is a mean over scored
  tokens, so the averaged gradient is exactly the single-process gradient of the global batch (up to float
  summation order). Batch-level auxiliary losses (FAERec's InfoNCE and Barlow Twins over the batch's distinct
  items, LLM-ESR's and RLMRec's in-batch terms) do not decompose over rows: each rank computes them over its
  own rows, and the update follows the token-weighted mean of the per-shard losses, an approximation of the
  global-batch loss: 0.3 % relative gradient difference on a 32-row test batch (tests/train/test_train_ddp.py);
  on Beauty, one epoch of SASRec+FAERec (dropout 0) with 2 vs 1 processes differed by 1.1 % in the weights
  (relative L2) and by 3e-5 in valid NDCG@20, against ~1e-8 and 0 for the BCE-only base method.
- Logged loss parts are weighted by ``n_r / n`` and summed over the ranks once per epoch (``all_reduce_sums``),
  which gives the single-process mean for the BCE part; the logged auxiliary losses are means of per-shard
  values (an InfoNCE over half the batch has fewer negatives), so compare them only at equal world size.
- Dropout and any other draw from torch's global generator: rank 0 keeps the single-process stream, rank r > 0
  is reseeded (``rank_seed``) so that the ranks' dropout masks are independent; every rank's state goes into
  the checkpoint (``gather_rng`` / ``restore_rng``), so a resumed run continues each rank's stream.
- Rank 0 alone validates, decides early stopping and broadcasts the decision; rank 0 alone writes the run's
  files. Validating on every rank would cost the same wall time (each rank on its own core) but the CPU and
  memory of N evaluations, and would rest the stop decision on bitwise-equal scores; a gloo wait sleeps, so on
  CPU rank 0 borrows the waiting ranks' threads (``all_threads``). The other ranks return when training ends,
  and rank 0 tests the best weights.
- CUDA (NCCL, rank r on cuda:LOCAL_RANK) follows the same code path but has not been run on a GPU yet.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from faerec.device import resolve_device
from faerec.errors import FaerecError

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}
# How long a rank waits in a collective, e.g. while rank 0 validates; torch's defaults are 10-30 min.
TIMEOUT_ENV = "FAEREC_DDP_TIMEOUT_MIN"
DEFAULT_TIMEOUT_MIN = 60.0
LAUNCH = "torchrun --nproc-per-node N -m faerec.train.ddp DIR [faerec train flags]"


@dataclass(frozen=True)
class World:
    """This process's place in the run; the default is a plain single process (no process group)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1  # processes on this machine
    active: bool = False  # a process group is set up: the DDP path runs (also with size 1)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def current() -> World:
    """The initialised process group's world, else a single process.

    A process that torchrun started (WORLD_SIZE > 1) without a process group would train alone and write the
    same files as its siblings, so that is refused.
    """
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0),
                     _env_int("LOCAL_WORLD_SIZE", 1), True)
    if _env_int("WORLD_SIZE", 1) > 1:
        raise FaerecError(f"started as one of {os.environ['WORLD_SIZE']} processes (WORLD_SIZE) but no process "
                          f"group is set up; launch data-parallel training as `{LAUNCH}`")
    return World()


def init(device_name: str | None) -> World:
    """Join the process group torchrun describes (env:// rendezvous): NCCL when the device is CUDA, else gloo."""
    missing = [name for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
               if name not in os.environ]
    if missing:
        raise FaerecError(f"not started by torchrun ({', '.join(missing)} unset); launch as `{LAUNCH}`")
    device = resolve_device(device_name)
    if device.type == "cuda":
        local_rank = _env_int("LOCAL_RANK", 0)
        if local_rank >= torch.cuda.device_count():
            raise FaerecError(f"local rank {local_rank} has no GPU: torch sees {torch.cuda.device_count()}; "
                              "start at most one process per GPU (--nproc-per-node)")
        torch.cuda.set_device(local_rank)
    minutes = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_MIN)
    dist.init_process_group(BACKENDS[device.type], timeout=datetime.timedelta(minutes=minutes))
    return current()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, world: World) -> torch.device:
    """Each rank's GPU is cuda:LOCAL_RANK; the CPU is shared."""
    if world.active and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


def rank_seed(seed: int, rank: int, epoch: int = 0) -> int:
    """A seed for rank ``rank``'s own torch stream (dropout), unrelated to the streams of other seeds."""
    digest = hashlib.sha256(f"faerec-ddp/{seed}/{rank}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_rank(seed: int, world: World, epoch: int = 0) -> None:
    """Give rank r > 0 its own torch stream; rank 0 keeps the single-process one."""
    if world.active and world.rank > 0:
        torch.manual_seed(rank_seed(seed, world.rank, epoch))


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if not world.active:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sums(sums: dict[str, float], world: World, device: torch.device) -> dict[str, float]:
    """Sum named floats over the ranks; names missing on a rank count 0, rank 0's order comes first."""
    if not world.active:
        return dict(sums)
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, list(sums))
    names = list(dict.fromkeys(name for names in gathered for name in names))
    values = torch.tensor([sums.get(name, 0.0) for name in names], dtype=torch.float64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return dict(zip(names, values.tolist(), strict=True))


def gather_rng(world: World, device: torch.device) -> list[dict[str, torch.Tensor]] | None:
    """Every rank's torch (and CUDA) generator state, in rank order; None without a process group."""
    if not world.active:
        return None
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, state)
    return gathered


def restore_rng(saved: list[dict[str, torch.Tensor]] | None, world: World, device: torch.device, seed: int,
                epoch: int) -> None:
    """After faerec.runs.checkpoint.restore_rng (rank 0's states): put back this rank's own torch stream.

    The data generator is shared, so a run may resume with another number of processes: a rank the
    checkpoint has no state for gets a fresh stream (the data stream is unchanged; dropout noise differs).
    """
    if not world.active:
        return
    saved = saved or []  # none: written by one plain process, whose torch stream rank 0 has just restored
    if world.rank < len(saved):
        torch.set_rng_state(saved[world.rank]["torch"])
        if device.type == "cuda" and "cuda" in saved[world.rank]:
            torch.cuda.set_rng_state(saved[world.rank]["cuda"], device)
    elif world.rank > 0:
        seed_rank(seed, world, epoch)
    written_by = len(saved) or 1
    if world.is_main and written_by != world.size:
        print(f"resuming with {world.size} processes a checkpoint written by {written_by}: the data stream is the "
              "same, the dropout noise of ranks > 0 is not", file=sys.stderr, flush=True)


def _borrows_threads(world: World, device: torch.device) -> bool:
    return world.active and world.local_size > 1 and device.type == "cpu"


@contextlib.contextmanager
def all_threads(world: World, device: torch.device) -> Iterator[None]:
    """On CPU, let rank 0 use the threads of the local ranks that wait for it (a gloo wait sleeps)."""
    if not _borrows_threads(world, device):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(before * world.local_size)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def take_idle_threads(world: World, device: torch.device) -> None:
    """Rank 0 after the other ranks have finished: use their threads for the rest of the run."""
    if _borrows_threads(world, device):
        torch.set_num_threads(torch.get_num_threads() * world.local_size)


def shard(world: World, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor,
          users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """This rank's rows ``[rank::size]`` of a global batch and its share ``n_r / n`` of the scored (non-zero)
    targets.

    A rank left without rows (a last batch smaller than the world) computes the loss of one borrowed row with
    share 0: it must still take part in the gradient all-reduce, and contributes nothing to it.
    """
    mine = slice(world.rank, None, world.size)
    if len(targets) <= world.rank:
        mine, share = slice(0, 1), 0.0
    else:
        share = int((targets[mine] != 0).sum()) / max(int((targets != 0).sum()), 1)
    return inputs[mine], targets[mine], negatives[mine], users[mine], share


def loss_scale(share: float, world: World) -> float:
    """The factor on a rank's loss that makes DDP's mean of the ranks' gradients the global batch's gradient:
    mean_r(size * n_r / n * grad mean_r) = sum_r grad sum_r / n = grad of the global mean."""
    return share * world.size


_DDP_PARAMETERS = frozenset(inspect.signature(DistributedDataParallel.__init__).parameters)


class _TrainingLoss(nn.Module):
    """DDP synchronises the gradients of what runs through its ``forward``, so the loss is made the forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, pos_ids, neg_ids, epoch, users=None):
        return self.model.training_loss(input_ids, pos_ids, neg_ids, epoch, users=users)


class DataParallel:
    """The trainer's view of DDP: this rank's rows of a global batch, and the DDP-wrapped training loss."""

    def __init__(self, model: nn.Module, world: World, device: torch.device) -> None:
        if not world.active:
            raise FaerecError("data-parallel training needs a process group (faerec.train.distributed.init)")
        self.world, self.device = world, device
        # The buffers (frozen LLM tables, popularity counts) are equal on every rank and never change, so
        # re-sending them before every forward would only cost time (torch >= 2.13 renamed the switch).
        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _DDP_PARAMETERS
                          else {"broadcast_buffers": False})
        self.loss = DistributedDataParallel(_TrainingLoss(model), device_ids=[device.index]
                                            if device.type == "cuda" else None, **no_buffer_sync)

    def shard(self, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, users: torch.Tensor):
        return shard(self.world, inputs, targets, negatives, users)

    def scale(self, share: float) -> float:
        return loss_scale(share, self.world)

    def reduce(self, sums: dict[str, float]) -> dict[str, float]:
        return all_reduce_sums(sums, self.world, self.device)
