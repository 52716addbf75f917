"""`faerec train DIR ...` (docs/CONTRACT.md)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from faerec.errors import FaerecError
from faerec.openmp import choose_wait_policy

# CLI flag -> TrainConfig / ModelConfig field
FLAG_FIELDS = {
    "backbone": "backbone", "method": "method", "epochs": "epochs", "seed": "seed", "device": "device",
    "encoder": "encoder", "batch_size": "batch_size", "lr": "lr", "patience": "patience",
    "max_len": "max_len", "hidden": "hidden", "layers": "layers", "eval_batch_size": "eval_batch_size",
    "popularity": "popularity", "protocol": "eval_protocol", "similarity_precision": "similarity_precision",
}
DEFAULT_METHOD = "faerec"  # the CLI trains the project's method unless told otherwise


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a sequential recommender on a prepared dataset",
                              description="Train with early stopping on validation; writes RUN_DIR/config.json, "
                              "checkpoint.pt, history.jsonl, best.pt and metrics.json.")
    add_arguments(p)
    p.set_defaults(func=_run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `faerec train` (also parsed by faerec.train.ddp, the data-parallel entry)."""
    p.add_argument("dataset", metavar="DIR", help="prepared dataset folder (faerec prepare)")
    p.add_argument("--backbone", help="a registered backbone (default sasrec; `faerec models` lists them)")
    p.add_argument("--method", help=f"a registered method (default {DEFAULT_METHOD}; `faerec models` lists them)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default 200; early stopping usually ends first)")
    p.add_argument("--seed", type=int, help="random seed (default 2024)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when available")
    p.add_argument("--out", metavar="RUN_DIR", help="default $FAEREC_RUNS_DIR (else runs)/<dataset-id>-<backbone>-"
                   "<method>-s<seed>-c<config hash>")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    p.add_argument("--encoder", help="embeddings to use for FAERec (default minilm)")
    p.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast for training")
    p.add_argument("--similarity-precision", choices=("auto", "fp32", "bf16"),
                   help="operands of the alignment losses' similarity matmul (default auto: bf16 where the "
                        "device runs it natively, i.e. CUDA with native bf16 or a CPU with avx512_bf16/amx_bf16)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patience", type=int)
    p.add_argument("--max-len", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--popularity", choices=("train", "paper"),
                   help="head/tail definition of reported metrics (default train; paper = full-sequence counts)")
    p.add_argument("--protocol", choices=("novel", "repeat"),
                   help="history mask of validation and test rankings (default novel: the whole input history "
                   "is masked, a repeat target counts as a miss; repeat: no history masked)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any TrainConfig or model field, or an option of the chosen backbone or method, e.g. "
                   "--set alpha=0.1 --set gate=false "
                   "(value read as JSON, else as a string); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; values are JSON literals where they parse (numbers, true/false), else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise FaerecError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    changes = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if args.bf16:
        changes["bf16"] = True
    changes.update(parse_settings(args.set))
    return changes


def train_config(args: argparse.Namespace):
    """(TrainConfig, run folder) the flags describe; on --resume the saved config, with the flags applied."""
    from faerec.data.folder import read_stats
    from faerec.models import ModelConfig
    from faerec.runs.config import TrainConfig
    from faerec.runs.folder import default_run_dir, read_config

    changes = overrides_from(args)
    cfg = TrainConfig(model=ModelConfig(method=DEFAULT_METHOD)).replace(**changes)
    run_dir = Path(args.out) if args.out else default_run_dir(read_stats(args.dataset)["dataset_id"], cfg)
    if args.resume and (run_dir / "config.json").exists():
        _, saved = read_config(run_dir)
        cfg = saved.replace(**changes)  # the saved run is authoritative; explicit flags must agree with it
    return cfg, run_dir


def _run(args: argparse.Namespace) -> dict:
    choose_wait_policy()
    from faerec.runs.folder import summary
    from faerec.train.run import train_run

    started = time.perf_counter()
    cfg, run_dir = train_config(args)
    result = train_run(args.dataset, cfg, run_dir, resume=args.resume, progress=not args.no_progress)
    return summary(result, time.perf_counter() - started)
