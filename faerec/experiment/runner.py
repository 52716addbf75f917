"""Run an experiment: prepare each dataset, embed it when a row reads text, train every run of the grid.

Run folders. Every run lives in the root runs folder ($FAEREC_RUNS_DIR, else ./runs) under
``<faerec.runs.folder.run_id>-e<epochs>p<patience>``: the run id's config hash covers every setting except the
resumable ones, and the suffix adds the epoch budget and patience, which the hash leaves out but an
experiment's numbers depend on. So two rows, or two experiments, that describe the same configuration share
one folder and train it once, and an experiment run never lands in the folder of a `faerec pipeline` run
(no suffix) that has another budget. The experiment's own folder, runs/<name>/, holds its manifest
(runs.json: row -> run folder), the resolved spec and the report.

A run is finished when its metrics.json exists: it is never trained again. Any other run is trained with
train_run(resume=True), so a killed experiment continues where it stopped (an interrupted run from its last
checkpoint). A run folder is locked while it trains, so two experiments that share it never train it twice at
once. A finished run from before per-user results existed gets its user_ranks.parquet from `evaluate_run`.

Each run trains in its own child process (``train_in_subprocess``). A process that trained several runs kept
the heap of the earlier ones (one sequential stream grew to 3.3 GB), so a later run's peak memory was an upper
bound and not its own; a child's peak is exactly its run's. The child dies with the experiment (Linux:
PR_SET_PDEATHSIG), so a killed experiment never leaves a run training behind it. On a CPU machine several runs
train side by side, each on its share of the cores (faerec.cores: that finishes a grid sooner than one run at a
time on every core); on a GPU they train one after another. With FAEREC_EXPERIMENT_IN_PROCESS=1 runs train in
this process, one at a time (tests that patch modules in-process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faerec.cores import CoreSplit, side_by_side_split
from faerec.data import folder as data_folder
from faerec.errors import FaerecError
from faerec.experiment.spec import Point, Spec
from faerec.io import write_json
from faerec.locks import file_lock
from faerec.memory import libc
from faerec.models import method_spec
from faerec.runs import folder
from faerec.runs.config import TrainConfig

MANIFEST = "runs.json"
SPEC_COPY = "spec.json"
REPORT = "report"
LOCK = ".train.lock"
IN_PROCESS_ENV = "FAEREC_EXPERIMENT_IN_PROCESS"
_PR_SET_PDEATHSIG = 1  # prctl(2)

Log = Callable[[str], None]


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Job:
    dataset_id: str
    dataset_dir: str
    point: Point
    run_dir: Path

    @property
    def config(self) -> TrainConfig:
        return self.point.config

    @property
    def label(self) -> str:
        return self.point.label

    @property
    def finished(self) -> bool:
        return (self.run_dir / folder.METRICS).exists()

    def entry(self) -> dict[str, Any]:
        """The manifest line of this (row, seed): what faerec.experiment.aggregate reads."""
        p = self.point
        return {"dataset": self.dataset_id, "dataset_dir": self.dataset_dir, "backbone": p.backbone,
                "label": p.label, "arm": p.arm.label, "method": p.arm.method, "seed": p.seed,
                "sweep": list(p.sweep) if p.sweep else None, "run_dir": str(self.run_dir)}


def experiment_dir(spec: Spec) -> Path:
    return folder.runs_root() / spec.name


def run_dir_for(dataset_id: str, cfg: TrainConfig) -> Path:
    return folder.runs_root() / f"{folder.run_id(dataset_id, cfg)}-e{cfg.epochs}p{cfg.patience}"


# --- datasets ------------------------------------------------------------------------------------------------
def is_prepared(source: str) -> bool:
    """A folder that already is a prepared dataset (it has stats.json): used as is, not prepared again."""
    return Path(source).is_dir() and data_folder.is_complete(source)


def prepare_source(source: str, progress: bool = True) -> dict[str, Any]:
    """`faerec prepare` of a source (5-core), unless its dataset folder is already up to date: a folder that
    is itself a prepared dataset, or the source's prepared folder written after every one of its input files
    (the catalogue folder's files, or the downloads in data/raw/<stem>/) by this version of faerec."""
    if is_prepared(source):
        return _prepared_summary(Path(source), "as is")
    current = _up_to_date(source)
    if current is not None:
        return _prepared_summary(current, "up to date")
    from faerec.data.prepare import prepare

    return prepare(source, progress=progress)


def _up_to_date(source: str) -> Path | None:
    from faerec import __version__
    from faerec.data.prepare import dataset_id
    from faerec.data.sources import resolve_source

    try:
        stem = resolve_source(source).dataset_stem()
    except FaerecError:
        return None  # prepare names the problem
    out = data_folder.processed_dir(dataset_id(stem, 5, 5))
    if not data_folder.is_complete(out) or data_folder.read_stats(out).get("faerec_version") != __version__:
        return None
    inputs = Path(source) if Path(source).is_dir() else data_folder.raw_dir(stem)
    files = [p for p in inputs.rglob("*") if p.is_file()] if inputs.is_dir() else []
    written = (out / data_folder.STATS).stat().st_mtime_ns
    if not files or max(p.stat().st_mtime_ns for p in files) >= written:
        return None
    return out


def _prepared_summary(path: Path, how: str) -> dict[str, Any]:
    stats = data_folder.read_stats(path)
    return {"path": str(path), "dataset_id": stats.get("dataset_id", path.name), "users": stats.get("users"),
            "items": stats.get("items"), "interactions": stats.get("interactions"), "prepared": how}


def text_needs(spec: Spec, datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The (dataset folder, encoder, PCA dim) triples the text-reading runs of the grid need embedded."""
    needs: dict[tuple[str, str, int], None] = {}
    for d in datasets:
        for point in spec.points():
            cfg = point.config
            if method_spec(cfg.model.method).needs_text:
                needs[(d["path"], cfg.encoder, cfg.model.hidden)] = None
    return [{"dataset_dir": p, "encoder": e, "pca_dim": h} for p, e, h in needs]


def embed(dataset_dir: str, encoder: str, pca_dim: int, progress: bool = True) -> dict[str, Any]:
    from faerec.text.embed import embed_dataset

    return embed_dataset(dataset_dir, encoder, pca_dim=pca_dim, progress=progress)


def plan(spec: Spec, datasets: list[dict[str, Any]]) -> list[Job]:
    """One job per dataset x backbone x row x sweep point x seed, in table order."""
    return [Job(str(d["dataset_id"]), str(d["path"]), point, run_dir_for(str(d["dataset_id"]), point.config))
            for d in datasets for point in spec.points()]


def distinct(jobs: list[Job]) -> list[Job]:
    """The jobs with distinct run folders (rows that describe the same configuration share one)."""
    seen: dict[Path, Job] = {}
    for job in jobs:
        seen.setdefault(job.run_dir, job)
    return list(seen.values())


# --- training ------------------------------------------------------------------------------------------------
def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / folder.METRICS).exists()


def isolated_by_default() -> bool:
    """True unless $FAEREC_EXPERIMENT_IN_PROCESS is set to 1 (see the module doc)."""
    return os.environ.get(IN_PROCESS_ENV, "").strip() != "1"


def train(job: Job, progress: bool = True, log: Log = stderr, isolate: bool = True) -> str:
    """Train ``job`` unless it is finished (in a child process with ``isolate``); "trained" or "skipped"."""
    if job.finished:
        ensure_user_ranks(job.run_dir, log)
        return "skipped"
    if isolate:
        return train_in_subprocess(job.dataset_dir, job.config, job.run_dir, show_log=True, progress=progress)
    return train_locked(job.dataset_dir, job.config, job.run_dir, progress, log)


def train_locked(dataset_dir: str, cfg: TrainConfig, run_dir: Path, progress: bool = True, log: Log = stderr) -> str:
    """train_run(resume=True) holding the run folder's lock; "skipped" if another process finished it first."""
    from faerec.train.run import train_run

    with file_lock(run_dir.parent / f".{run_dir.name}{LOCK}", exclusive=True, wait=True,
                   on_wait=lambda: log(f"{run_dir.name}: another process is training it; waiting")):
        if (run_dir / folder.METRICS).exists():  # the other process finished it while we waited
            return "skipped"
        train_run(dataset_dir, cfg, run_dir, resume=True, progress=progress)
    return "trained"


def train_in_subprocess(dataset_dir: str, cfg: TrainConfig, run_dir: Path, show_log: bool = False,
                        progress: bool = False, threads: int | None = None) -> str:
    """``train_locked`` in a child process that dies with this one. Runs trained side by side need it (in one
    process they would share torch's global random state: initialisation, dropout), and so does a run's own
    peak memory. ``show_log``: the child's messages go to this process's stderr as they come (else they are
    kept for the error message); ``progress``: the child draws its progress bars there too. ``threads``: the
    child's torch threads (faerec.cores decides them for runs side by side); None: torch's default."""
    payload = json.dumps({"dataset_dir": dataset_dir, "config": cfg.to_dict(), "run_dir": str(run_dir),
                          "parent": os.getpid(), "progress": progress and show_log})
    env = None
    if threads is not None:  # read by OpenMP and MKL when the child's torch starts its thread pool
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, "-m", "faerec.experiment.runner", payload], stdout=subprocess.PIPE,
                            stderr=None if show_log else subprocess.PIPE, text=True, env=env)
    if result.returncode != 0:
        said = "its messages are above" if show_log else result.stderr.strip()[-2000:]
        raise FaerecError(f"training failed (exit {result.returncode}): {said}", path=run_dir)
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "trained"


def describe(job: Job) -> str:
    return f"{job.dataset_id} / {job.point.backbone} / {job.label} / seed {job.point.seed}"


def train_side_by_side(jobs: list[Job], split: CoreSplit, finished: Callable[[Job, str, float], None],
                       log: Log = stderr) -> None:
    """Train ``jobs`` in child processes, ``split.processes`` at a time on ``split.threads`` threads each;
    ``finished(job, status, seconds)`` is called in this thread as each one ends. Their messages are kept for
    an error (progress bars of runs side by side would interleave). When a run fails, no waiting run is
    started, the running ones finish, and then the first failure is raised."""
    stop = threading.Event()
    started: dict[Path, float] = {}

    def one(job: Job) -> str | None:
        if stop.is_set():
            return None  # an earlier run failed, or the experiment was interrupted
        started[job.run_dir] = time.perf_counter()
        try:
            return train_in_subprocess(job.dataset_dir, job.config, job.run_dir, threads=split.threads)
        except BaseException:
            stop.set()
            raise

    failure: Exception | None = None
    with ThreadPoolExecutor(max_workers=split.processes, thread_name_prefix="faerec-run") as pool:
        futures = {}
        for i, job in enumerate(jobs, 1):
            futures[pool.submit(one, job)] = job
            log(f"run {i}/{len(jobs)} {describe(job)}: queued ({job.run_dir.name})")
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    status = future.result()
                except Exception as error:  # noqa: BLE001 - raised below, once the running runs are done
                    failure = failure or error
                    continue
                if status is not None:
                    finished(job, status, time.perf_counter() - started[job.run_dir])
        except BaseException:  # interrupted while waiting: start nothing more
            stop.set()
            raise
    if failure is not None:
        raise failure


def _die_with_parent(parent: int | None) -> None:
    """Linux: this process gets SIGKILL when its parent dies (a killed experiment takes its run with it; the run
    resumes from its checkpoint next time). Elsewhere nothing is set."""
    if not sys.platform.startswith("linux"):
        return
    prctl = getattr(libc(), "prctl", None)
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent is not None and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def ensure_user_ranks(run_dir: Path, log: Log = stderr) -> None:
    """A finished run from before per-user results existed gets them from its best weights (evaluate_run)."""
    if (run_dir / folder.USER_RANKS).exists():
        return
    from faerec.eval.run import evaluate_run

    log(f"{run_dir.name}: finished before per-user results existed; re-evaluating its best weights")
    evaluate_run(run_dir)


# --- the manifest and the whole experiment ----------------------------------------------------------------------
def write_manifest(spec: Spec, jobs: list[Job], statuses: dict[Path, str]) -> list[dict[str, Any]]:
    entries = []
    for job in jobs:
        entry = {**job.entry(), "status": statuses.get(job.run_dir, "finished" if job.finished else "pending")}
        if job.finished:
            metrics = folder.read_metrics(job.run_dir)
            entry.update(best_epoch=metrics.get("best_epoch"), epochs_run=metrics.get("epochs_run"))
        entries.append(entry)
    out = experiment_dir(spec)
    write_json(out / SPEC_COPY, spec.to_dict())
    write_json(out / MANIFEST, entries)
    return entries


def run(spec: Spec, progress: bool = True, log: Log = stderr, isolate: bool | None = None,
        parallel: int = 0) -> dict[str, Any]:
    """The whole experiment (`faerec experiment`), each run in a child process unless ``isolate`` is False
    (default: ``isolated_by_default()``); returns the one-line summary plus the report. ``parallel``: runs
    trained at once, each on its share of the cores (0: as faerec.cores.split_for decides; in-process runs
    always train one at a time)."""
    from faerec.experiment.reporting import build_report

    isolate = isolated_by_default() if isolate is None else isolate

    started = time.perf_counter()
    datasets = []
    for source in spec.datasets:
        d = prepare_source(source, progress=progress)
        log(f"dataset {d['dataset_id']}: {d.get('users')} users, {d.get('items')} items ({d['path']})")
        datasets.append(d)
    for need in text_needs(spec, datasets):
        result = embed(**need, progress=progress)
        log(f"embeddings {need['encoder']} of {need['dataset_dir']}: {result.get('embedded', 0)} embedded, "
            f"{result.get('cached', 0)} from the cache")
    jobs = plan(spec, datasets)
    todo = distinct(jobs)
    statuses: dict[Path, str] = {}
    write_manifest(spec, jobs, statuses)
    waiting = [job for job in todo if not job.finished]
    split = side_by_side_split([job.config.device for job in waiting], parallel) if isolate else None
    side_by_side = split is not None
    if side_by_side:
        log(f"training {len(waiting)} runs side by side: {split.reason}")
    for i, job in enumerate(todo, 1):
        if side_by_side and not job.finished:
            continue  # trained below
        what = "finished, skipped" if job.finished else "training"
        log(f"run {i}/{len(todo)} {describe(job)}: {what} ({job.run_dir.name})")
        statuses[job.run_dir] = train(job, progress=progress, log=log, isolate=isolate)
        write_manifest(spec, jobs, statuses)
    if side_by_side:
        def finished(job: Job, status: str, seconds: float) -> None:
            statuses[job.run_dir] = status
            write_manifest(spec, jobs, statuses)
            log(f"{describe(job)}: {status} in {seconds:.0f} s ({job.run_dir.name})")

        train_side_by_side(waiting, split, finished, log)
    entries = write_manifest(spec, jobs, statuses)
    report = build_report(spec, entries, experiment_dir(spec) / REPORT, log=log)
    return {"summary": summary(spec, todo, statuses, report.folder, time.perf_counter() - started),
            "report": report}


def summary(spec: Spec, todo: list[Job], statuses: dict[Path, str], report_dir: Path,
            seconds: float) -> dict[str, Any]:
    values = list(statuses.values())
    return {"experiment": spec.name, "runs": len(todo), "trained": values.count("trained"),
            "skipped": values.count("skipped"), "report": str(report_dir), "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    """`python -m faerec.experiment.runner JOB_JSON`: train one run (train_in_subprocess's child)."""
    from faerec.openmp import choose_wait_policy

    job = json.loads((argv if argv is not None else sys.argv[1:])[0])
    _die_with_parent(job.get("parent"))
    choose_wait_policy()
    print(train_locked(job["dataset_dir"], TrainConfig.from_dict(job["config"]), Path(job["run_dir"]),
                       progress=bool(job.get("progress", False))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
