"""A whole training run: set-up, epochs with validation and early stopping, checkpoints, final test metrics.

runs/<run-id>/
  config.json      dataset folder + TrainConfig (model config nested); written first
  checkpoint.pt    after every epoch, atomically (faerec.runs.checkpoint); the only file a resume trusts
  history.jsonl    one line per epoch: losses, train/valid seconds, validation metrics; rewritten atomically
                   from the checkpointed history, so it never holds an epoch that a resume will redo
  best.pt          {"epoch", "model"}: the best-validation weights, for `faerec evaluate`
  user_ranks.parquet  each test user's target and rank (faerec.eval.run.write_user_ranks)
  metrics.json     docs/CONTRACT.md; written last
A run killed at any point and started again with ``resume=True`` redoes at most the unfinished epoch (two when
the last one's validation was running beside the next epoch, faerec.train.overlap) and, on CPU, ends with
exactly the metrics of an uninterrupted run (tests/train).
Under torchrun (faerec.train.ddp) every rank runs this function: faerec.train.distributed says how the ranks
share the work; rank 0 alone validates, writes these files and tests the best weights.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faerec import __version__
from faerec.data.dataset import Dataset
from faerec.device import describe, resolve_device, resolve_similarity_precision
from faerec.errors import FaerecError
from faerec.eval.document import metrics_document, peak_memory_mb
from faerec.eval.evaluator import Evaluator
from faerec.eval.run import write_user_ranks
from faerec.io import write_json, write_text
from faerec.memory import HeapGuard, configure_heap, reset_peak_resident
from faerec.runs import checkpoint, folder
from faerec.runs.config import TrainConfig
from faerec.runs.modelling import check_embeddings, model_for, text_tables
from faerec.train import distributed
from faerec.train.loop import EarlyStopping, train_epoch
from faerec.train.negatives import NegativeSampler
from faerec.train.overlap import ValidationThread, overlap_wanted, snapshot
from faerec.train.sequences import TrainingExamples


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the run's settings, in its multi-tensor (foreach) form.

    torch's default Adam on CPU is the per-parameter loop; on Beauty (a 12,102 x 128 ID table among ~1.9 M
    parameters) its step took 21 ms single-threaded, ~7 % of a SASRec+FAERec batch, against 7.2 ms in the
    foreach form, which computes the same update. The fused kernel (4.2 ms) is not used: its results changed
    between two identical runs in one process, and seeded runs here are bit-for-bit repeatable. Checkpoints
    of either form resume in the other (the optimiser state is the same).
    """
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay,
                            foreach=True)


def train_run(
    dataset_dir: str | Path,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    overlap_validation: bool | None = None,
) -> dict[str, Any]:
    """Train, early-stop on validation, test the best weights; returns metrics.json's content + "run_dir".

    ``overlap_validation``: validate each epoch in a second thread while the next one trains
    (faerec.train.overlap; the same results either way); None decides by the run's threads and cores."""
    wall_start = time.perf_counter()
    configure_heap()  # fixed malloc thresholds: the next batch reuses this batch's freed blocks (faerec.memory)
    reset_peak_resident()  # metrics.json's peak is this run's, also when one process trains several runs
    world = distributed.current()
    dataset = Dataset.load(dataset_dir)
    run_dir = Path(out_dir) if out_dir is not None else folder.default_run_dir(dataset.name, cfg)
    ckpt_path = run_dir / checkpoint.CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise FaerecError("this run folder already holds a checkpoint; resume it (--resume) or choose another "
                          "--out", path=run_dir)
    tables = text_tables(dataset, cfg)
    embeddings = tables.record if tables is not None else None
    if resume and (run_dir / folder.CONFIG).exists():
        _, saved = folder.read_config(run_dir)
        changed = saved.differences(cfg)
        if changed:
            raise FaerecError(f"cannot resume with a different configuration (changed: {', '.join(changed)})",
                              path=run_dir / folder.CONFIG)
        check_embeddings(folder.recorded_embeddings(run_dir), tables, run_dir)
    if world.is_main:
        write_json(run_dir / folder.CONFIG, {"dataset_dir": str(Path(dataset_dir).resolve()),
                                             "dataset": dataset.name, "faerec_version": __version__,
                                             "train": cfg.to_dict(), "embeddings": embeddings})

    device = distributed.rank_device(resolve_device(cfg.device), world)
    similarity, similarity_reason = resolve_similarity_precision(cfg.similarity_precision, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seed_everything(cfg.seed)
    data_generator = torch.Generator().manual_seed(cfg.seed)
    model = model_for(dataset, cfg, tables).to(device)
    distributed.seed_rank(cfg.seed, world)  # after the (identical) initialisation: each rank's own dropout
    optimizer = make_optimizer(model, cfg)
    examples = TrainingExamples.build(dataset, cfg.model.max_len)
    if len(examples) == 0:
        raise FaerecError("no user has two training items, so there is nothing to train on", path=dataset.path)
    if not dataset.evaluable.any():
        raise FaerecError("no user has 3 or more interactions, so there is nothing to validate on",
                          path=dataset.path)
    sampler = NegativeSampler(dataset, data_generator)
    evaluator = Evaluator(dataset, cfg.model.max_len, cfg.eval_batch_size, device, cfg.popularity,
                          cfg.eval_protocol)

    stopping, history, elapsed, epochs_done, stop_reason = EarlyStopping(), [], 0.0, 0, None
    if resume and ckpt_path.exists():
        state = checkpoint.load(ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        checkpoint.restore_rng(state["rng"], data_generator)
        distributed.restore_rng(state.get("rank_rng"), world, device, cfg.seed, int(state["epoch"]))
        stopping = EarlyStopping.from_dict(state["early_stopping"])
        history, elapsed = list(state["history"]), float(state["elapsed_seconds"])
        epochs_done, stop_reason = int(state["epoch"]), state["stop_reason"]
        if stop_reason == "epoch_budget" and cfg.epochs > epochs_done:
            stop_reason = None  # the budget was raised: keep training
        elif stop_reason == "early_stopping" and not stopping.should_stop(cfg.patience):
            stop_reason = None  # patience was raised: keep training
    parallel = distributed.DataParallel(model, world, device) if world.active else None
    if world.is_main:
        _write_history(run_dir, history)

    session_start = time.perf_counter()
    guard = HeapGuard()

    def elapsed_now() -> float:  # wall time over every session of this run, resumed ones included
        return elapsed + time.perf_counter() - session_start

    def finish(record: dict[str, Any], state: dict | None, valid: dict | None, seconds: float) -> str | None:
        """Apply one epoch's validation, early stopping, history line and checkpoint, in epoch order; ``state``:
        the snapshot taken at the end of that epoch, or None for the live model (nothing trained since)."""
        reason = None
        if valid is not None:
            record["valid_seconds"] = valid.pop("seconds")
            record["valid"] = valid
            best = (lambda: state["model"]) if state is not None else (lambda: checkpoint.cpu_state(model))
            record["improved"] = stopping.update(valid["overall"][cfg.select_metric], record["epoch"], best)
            if stopping.should_stop(cfg.patience):
                reason = "early_stopping"
        if reason is None and record["epoch"] == cfg.epochs:
            reason = "epoch_budget"
        reason = distributed.broadcast(reason, world)  # rank 0 validated and decided
        history.append(record)
        if progress and world.is_main:
            _report_epoch(record, stopping, cfg.select_metric)
        rank_rng = distributed.gather_rng(world, device)
        if world.is_main:
            saved = state or {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "rng": checkpoint.capture_rng(data_generator)}
            checkpoint.save(ckpt_path, {
                **saved, "epoch": record["epoch"], "early_stopping": stopping.to_dict(), "history": history,
                "elapsed_seconds": seconds, "stop_reason": reason,
                **({"rank_rng": rank_rng} if rank_rng is not None else {}),
            })
            _write_history(run_dir, history)
        return reason

    # faerec.train.overlap: the validation of epoch e may run in a second thread while epoch e + 1 trains
    beside = ValidationThread(model, evaluator) if overlap_wanted(overlap_validation, device, world.active) else None
    pending: tuple | None = None  # (record, snapshot, validation future, elapsed) of the epoch validating beside
    try:
        for epoch in range(epochs_done, cfg.epochs):
            if stop_reason is not None:
                break
            record: dict[str, Any] = {"epoch": epoch + 1}
            started = time.perf_counter()
            record.update(train_epoch(model, optimizer, examples, sampler, epoch=epoch, batch_size=cfg.batch_size,
                                      device=device, bf16=cfg.bf16, bf16_similarity=similarity == "bf16",
                                      progress=progress and world.is_main, parallel=parallel))
            record["train_seconds"] = time.perf_counter() - started
            record["examples_per_second"] = len(examples) / record["train_seconds"]
            if pending is not None:
                done, state, future, elapsed_then = pending
                pending = None
                stop_reason = finish(done, state, future.result(), elapsed_then)
                if stop_reason is not None:
                    break  # without the overlap this epoch would not have been trained: drop it
            validates = ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs) and world.is_main
            if validates and beside is not None and epoch + 1 < cfg.epochs:
                state = snapshot(model, optimizer, data_generator)
                pending = (record, state, beside.submit(state["model"]), elapsed_now())
            else:
                valid = None
                if validates:
                    with distributed.all_threads(world, device):
                        valid = evaluator.evaluate(model, "valid")
                stop_reason = finish(record, None, valid, elapsed_now())
            guard.check()  # between epochs, where handing free pages back costs one re-fault of the working set
    finally:
        if beside is not None:
            beside.close()
    elapsed = elapsed_now()
    if not world.is_main:  # rank 0 alone tests the best weights and writes the rest of the run's files
        return {"run_dir": str(run_dir), "rank": world.rank}
    distributed.take_idle_threads(world, device)  # the other ranks are done: their cores are free

    if stopping.best_state is None:
        raise FaerecError("no validation was run, so there are no best weights", path=run_dir)
    final_start = time.perf_counter()
    model.load_state_dict(stopping.best_state)
    checkpoint.save(run_dir / checkpoint.BEST, {"epoch": stopping.best_epoch, "model": stopping.best_state})
    # the best epoch's validation scored exactly these weights: its metrics, not a second pass over the split
    valid = next(r["valid"] for r in history if r["epoch"] == stopping.best_epoch)
    test = evaluator.evaluate(model, "test", also=("paper",))
    write_user_ranks(evaluator, model, run_dir / folder.USER_RANKS)  # before metrics.json, which marks the end
    train_times = [r["train_seconds"] for r in history]
    timing = {
        "train_seconds_per_epoch": sum(train_times) / len(train_times) if train_times else 0.0,
        "eval_seconds": test["seconds"],
        "total_seconds": elapsed + time.perf_counter() - final_start,
        "setup_seconds": session_start - wall_start,
        **({"processes": world.size} if world.active else {}),  # data-parallel ranks (faerec.train.ddp)
    }
    doc = metrics_document(dataset, cfg.model.backbone, cfg.model.method, cfg.seed, stopping.best_epoch,
                           len(history), valid, test, timing, describe(device), peak_memory_mb(device),
                           stop_reason)
    doc["precision"] = {"autocast_bf16": cfg.bf16, "similarity": similarity, "similarity_reason": similarity_reason}
    write_json(run_dir / folder.METRICS, doc)
    return {**doc, "run_dir": str(run_dir)}


def _report_epoch(record: dict[str, Any], stopping: EarlyStopping, metric: str) -> None:
    """One line per epoch on stderr (the progress bar itself disappears when the epoch ends)."""
    line = f"epoch {record['epoch']}: loss {record['loss']:.4f}, {record['train_seconds']:.1f} s"
    if "valid" in record:
        line += (f", valid {metric} {record['valid']['overall'][metric]:.4f} "
                 f"(best {stopping.best_score:.4f} at epoch {stopping.best_epoch})")
    print(line, file=sys.stderr, flush=True)


def _write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    write_text(run_dir / folder.HISTORY, "".join(json.dumps(r, default=float) + "\n" for r in history))
