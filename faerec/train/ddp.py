"""Data-parallel training: ``torchrun --nproc-per-node N -m faerec.train.ddp DIR [the flags of faerec train]``.

Every flag means what it means for `faerec train`; ``--batch-size`` is the GLOBAL batch, split over the N
processes (faerec.train.distributed describes the scheme). On CPU the processes talk over gloo and each uses
OMP_NUM_THREADS torch threads (torchrun sets 1 unless told otherwise: on C cores, N processes x C/N threads);
on CUDA over NCCL, process i on cuda:LOCAL_RANK (one process per GPU). Rank 0 writes the run folder, exactly
the files of `faerec train`, and prints the same one-line JSON summary; a killed run resumes with ``--resume``
under torchrun (all ranks read rank 0's checkpoint). ``faerec train`` itself refuses to run under torchrun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from faerec.errors import FaerecError
from faerec.openmp import choose_wait_policy
from faerec.train import commands

PROG = "torchrun --nproc-per-node N -m faerec.train.ddp"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Data-parallel `faerec train` (torch DDP): the "
                                     "global batch is split over the torchrun processes; rank 0 writes the run.")
    commands.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    choose_wait_policy()  # before torch is imported
    from faerec.runs.folder import summary
    from faerec.train import distributed
    from faerec.train.run import train_run

    started = time.perf_counter()
    where = f"faerec.train.ddp (rank {os.environ.get('RANK', '?')})"
    try:
        cfg, run_dir = commands.train_config(args)
        world = distributed.init(cfg.device)
        result = train_run(args.dataset, cfg, run_dir, resume=args.resume, progress=not args.no_progress)
    except FaerecError as exc:
        print(f"{where}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    finally:
        distributed.teardown()
    if world.is_main:
        print(json.dumps(summary(result, time.perf_counter() - started), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
