"""The `faerec-experiment` flow (deployment `experiment`): an experiment spec's grid of runs, its tables and
figures, as Prefect artifacts.

The same library code as `faerec experiment` (faerec.experiment): the spec is a file or preset name
(``spec``) and/or its fields given inline, which override the file's. Datasets are prepared and embedded by
the pipeline's cached tasks (flows.tasks); the runs train through a task runner with ``parallel`` workers
(default 0: on a CPU machine as many side by side as faerec.cores allows, each in its own child process on its
share of the cores, since torch's thread count and random state are global; one at a time on a GPU), locally
or handed to the `faerec-train/train` deployment on the `gpu` pool (``train_on="gpu-pool"``, ``parallel``
at a time). A finished run
(metrics.json) is skipped, an unfinished one resumes from its checkpoint, so a crashed flow run can simply be
started again.

Artifacts (keys ``faerec-experiment-<name>-...``): ``progress`` (finished runs / runs, updated as runs end),
``report`` (report.md), one table artifact per table (``table-main``, ``table-significance``,
``table-ablation-<dataset>``, ``table-sweep-<field>``, ``table-groups``, ``table-coverage``, ``table-runs``),
and one markdown artifact per figure (``figure-<name>``: the PNG inline and its path under
runs/<name>/report/).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from faerec.cores import side_by_side_split
from faerec.experiment import runner
from faerec.experiment import spec as spec_module
from faerec.experiment.reporting import Report, build_report
from faerec.models import backbone_names, method_names
from faerec.runs.config import TrainConfig
from flows.artifacts import artifact_key
from flows.tasks import cached, embed_task, embedded, prepare_task, prepared, train_on_pool_task

BackboneName = Literal[tuple(backbone_names())]  # type: ignore[valid-type]
MethodName = Literal[tuple(method_names())]  # type: ignore[valid-type]
SPEC_FIELDS = ("name", "description", "datasets", "backbones", "methods", "seeds", "epochs", "patience", "encoder",
               "reference", "tsne", "variants", "sweep", "settings")


class ExperimentParams(BaseModel):
    """A spec file or preset and/or its fields; a field given here overrides the file's."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = Field(None, description="A spec TOML file (relative to the project) or a preset name: "
                             "ablations, backbones, comparison, seeds, sweeps. Leave empty to give every field below.")
    name: str | None = Field(None, description="Experiment name: runs/<name>/ and the artifact keys (default: "
                             "the spec's name, else its file name).")
    description: str | None = None
    datasets: list[str] | None = Field(None, description="Sources or catalogue / prepared folders (replaces the "
                                       "spec's).")
    backbones: list[BackboneName] | None = None
    methods: list[MethodName] | None = Field(None, description="The method rows; base is the usual reference.")
    seeds: list[int] | None = None
    epochs: int | None = Field(None, ge=1)
    patience: int | None = Field(None, ge=1)
    encoder: str | None = None
    reference: str | None = Field(None, description="The row that Impr. rows and significance tests compare "
                                  "against (default base).")
    tsne: list[str] | None = Field(None, description="Rows whose item embeddings get a t-SNE figure.")
    variants: dict[str, dict[str, Any]] | None = Field(None, description="More rows: name -> overrides, e.g. "
                                                       "{\"w/o ILA\": {\"method\": \"faerec\", \"item_align\": false}}.")
    sweep: dict[str, list[Any]] | None = Field(None, description="field -> values, one run per value.")
    settings: dict[str, Any] | None = Field(None, description="Fixed overrides of every run that has them.")
    parallel: int = Field(0, ge=0, description="Runs trained at once, each in its own process on its share of "
                          "the CPU cores (0: as many as the runs, cores and memory allow; one at a time on a GPU).")
    train_on: Literal["local", "gpu-pool"] = Field(
        "local", description="local: train in this flow run's machine; gpu-pool: hand each run to the "
        "`faerec-train/train` deployment on the gpu work pool (the runs folder must be shared).")
    train_deployment: str = Field("faerec-train/train", description="Deployment used when train_on=gpu-pool.")


def spec_of(params: ExperimentParams) -> spec_module.Spec:
    data: dict[str, Any] = {}
    source, default_name = "flow parameters", "experiment"
    if params.spec:
        data, path = spec_module.read_file(params.spec)
        source, default_name = str(path), path.stem
    for key in SPEC_FIELDS:
        value = getattr(params, key)
        if value is not None:
            data[key] = value
    return spec_module.from_dict(data, source=source, default_name=default_name)


@task(name="experiment-train", task_run_name="train {label} ({run_dir})", cache_policy=NO_CACHE)
def train_run_task(dataset_dir: str, config: dict[str, Any], run_dir: str, label: str, how: str,
                   deployment: str, threads: int | None = None) -> str:
    """One run: "skipped" when it is finished, else trained ("trained") here, in a child process, or on the pool."""
    path = Path(run_dir)
    if runner.is_finished(path):
        runner.ensure_user_ranks(path)
        return "skipped"
    if how == "gpu-pool":
        train_on_pool_task.fn(dataset_dir=dataset_dir, config=config, run_dir=run_dir, deployment=deployment)
        return "trained"
    cfg = TrainConfig.from_dict(config)
    if how == "subprocess":
        return runner.train_in_subprocess(dataset_dir, cfg, path, threads=threads)
    return runner.train_locked(dataset_dir, cfg, path, progress=False)


@flow(name="faerec-experiment-runs", log_prints=True)
def train_runs(calls: list[dict[str, Any]], progress_id: str, done: int, total: int) -> dict[str, str]:
    """Train the unfinished runs through this flow's task runner; updates the progress artifact as they end."""
    log = get_run_logger()
    futures = {train_run_task.submit(**call): call for call in calls}
    statuses: dict[str, str] = {}
    for future in as_completed(list(futures)):
        call = futures[future]
        statuses[call["run_dir"]] = future.result()
        done += 1
        update_progress_artifact(UUID(progress_id), progress=100.0 * done / max(total, 1),
                                 description=f"{done} of {total} runs finished")
        log.info("%s: %s (%d/%d)", call["label"], statuses[call["run_dir"]], done, total)
    return statuses


@flow(name="faerec-experiment", log_prints=True)
def experiment_flow(config: ExperimentParams = ExperimentParams()) -> dict[str, Any]:  # noqa: B008 (a form default)
    """Prepare, embed, train the spec's grid (skipping finished runs), then publish its tables and figures."""
    log = get_run_logger()
    started = time.perf_counter()
    spec = spec_of(config)
    datasets = [runner.prepare_source(s, progress=False) if runner.is_prepared(s)
                else cached(prepare_task, prepared, source=s) for s in spec.datasets]
    for need in runner.text_needs(spec, datasets):
        cached(embed_task, embedded, **need)
    jobs = runner.plan(spec, datasets)
    todo = runner.distinct(jobs)
    statuses: dict[Path, str] = {}
    runner.write_manifest(spec, jobs, statuses)
    done = sum(job.finished for job in todo)
    progress_id = create_progress_artifact(
        progress=100.0 * done / max(len(todo), 1), key=key(spec, "progress"),
        description=f"{done} of {len(todo)} runs of experiment {spec.name} finished")
    at_once, threads, how = max(config.parallel, 1), None, config.train_on
    if config.train_on == "local" and not runner.isolated_by_default():
        at_once, how = 1, "local"  # FAEREC_EXPERIMENT_IN_PROCESS=1: in this process, one at a time
    elif config.train_on == "local":
        waiting = [job for job in todo if not job.finished]
        split = side_by_side_split([job.config.device for job in waiting], config.parallel)
        if split is None:
            at_once, how = 1, "local"
        else:
            at_once, threads, how = split.processes, split.threads, "subprocess"
    calls = [{"dataset_dir": job.dataset_dir, "config": job.config.to_dict(), "run_dir": str(job.run_dir),
              "label": job.label, "how": how, "deployment": config.train_deployment, "threads": threads}
             for job in todo]
    log.info("experiment %s: %d runs, %d finished already; training %s, %d at a time%s", spec.name, len(todo),
             done, how, at_once, f" on {threads} threads each" if threads else "")
    runs_flow = train_runs.with_options(task_runner=ThreadPoolTaskRunner(max_workers=at_once))
    result = runs_flow(calls, str(progress_id), 0, len(todo))
    statuses = {Path(run_dir): status for run_dir, status in result.items()}
    entries = runner.write_manifest(spec, jobs, statuses)
    report = build_report(spec, entries, runner.experiment_dir(spec) / runner.REPORT,
                          log=lambda message: log.info(message))
    publish(spec, report)
    log.info("main table:\n%s", report.terminal_table())
    out = runner.summary(spec, todo, statuses, report.folder, time.perf_counter() - started)
    return {**out, "files": [str(report.markdown_path), *[str(f.path) for f in report.figures]]}


def key(spec: spec_module.Spec, *parts: str) -> str:
    return artifact_key("experiment", spec.name, *parts)


def publish(spec: spec_module.Spec, report: Report) -> None:
    """The report, every table and every figure as artifacts (the same objects as runs/<name>/report/)."""
    create_markdown_artifact(key=key(spec, "report"), markdown=report.markdown_path.read_text(),
                             description=f"Experiment {spec.name}: every table (figures in the figure artifacts)")
    for table in report.tables:
        create_table_artifact(table=table.records() or [{"note": "no rows"}], key=key(spec, "table", table.key),
                              description=f"{table.title}. {table.note}"[:5000])
    for figure in report.figures:
        url = "data:image/png;base64," + base64.b64encode(figure.path.read_bytes()).decode()
        create_markdown_artifact(key=key(spec, "figure", figure.key),
                                 markdown=f"### {figure.title}\n\n![{figure.title}]({url})\n\nFile: `{figure.path}`\n",
                                 description=f"{figure.title} ({figure.path})")
