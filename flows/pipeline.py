"""The `faerec` flow (deployment `full-pipeline`): prepare -> embed -> train -> evaluate, with artifacts.

Thin by design: stages are faerec/ functions wrapped in cached tasks (flows.tasks); tables and plots come
from faerec.report (flows.artifacts). Datasets are embedded in parallel through the flow's task runner, which
can be swapped for prefect-dask's DaskTaskRunner or prefect-ray's RayTaskRunner to scale out. On a CPU machine
the training runs train side by side in child processes, each on its share of the cores (faerec.cores).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from faerec.cores import side_by_side_split, usable_cores
from faerec.models import ModelConfig, text_methods
from faerec.runs import folder
from faerec.runs.config import TrainConfig
from flows import artifacts
from flows.params import PipelineParams
from flows.tasks import (
    cached,
    cached_concurrently,
    embed_task,
    embedded,
    prepare_task,
    prepared,
    recommend_task,
    train_on_pool_task,
    train_task,
    trained,
)

EMBED_AT_ONCE = 2  # datasets embedded at a time; each encoder already uses every core


def train_config(params: PipelineParams, backbone: str, method: str) -> dict[str, Any]:
    cfg = TrainConfig(model=ModelConfig(backbone=backbone, method=method, hidden=params.hidden),
                      epochs=params.epochs, patience=params.patience, seed=params.seed, encoder=params.encoder,
                      device=params.device, eval_protocol=params.eval_protocol)
    return cfg.to_dict()


def run_dir_for(dataset_id: str, config: dict[str, Any]) -> str:
    """The run folder faerec.runs.folder names for this configuration (the CLI uses the same one)."""
    return str(folder.default_run_dir(dataset_id, TrainConfig.from_dict(config)))


def embed_all(datasets: list[dict[str, Any]], encoder: str, pca_dim: int) -> list[dict[str, Any]]:
    """Embed the datasets concurrently through the task runner; "stage" tells whether this run embedded or
    the task cache answered (then the counts are those of the run that did the work)."""
    calls = [{"dataset_dir": d["path"], "encoder": encoder, "pca_dim": pca_dim} for d in datasets]
    return [{**result, "stage": "cached" if from_cache else "ran"}
            for result, from_cache in cached_concurrently(embed_task, embedded, calls, at_once=EMBED_AT_ONCE)]


def train_on_pool(jobs: list[tuple[dict[str, Any], dict[str, Any]]], deployment: str) -> list[dict[str, Any]]:
    """Hand every run to the training deployment at once (they run in parallel if the pool has several
    workers); faerec-train trains and evaluates there, so its metrics.json is the result."""
    calls = [{"dataset_dir": d["path"], "config": cfg, "run_dir": run_dir_for(d["dataset_id"], cfg),
              "deployment": deployment} for d, cfg in jobs]
    return [result for result, _ in cached_concurrently(train_on_pool_task, trained, calls)]


def train_here(calls: list[dict[str, Any]], processes: int, log: Any) -> list[dict[str, Any]]:
    """Train on this machine: side by side in child processes, each on its share of the cores, where
    faerec.cores says that is faster (several runs on a CPU machine); else one after another in this process.
    A run's numbers depend on its thread count in the last digits, and the split is fixed for the whole
    stage, so the same machine and parameters always give the same numbers."""
    split = side_by_side_split([c["config"]["device"] for c in calls], processes)
    if split is None:
        return [cached(train_task, trained, **kwargs) for kwargs in calls]
    log.info("training %d runs side by side: %s", len(calls), split.reason)
    calls = [{**kwargs, "threads": split.threads} for kwargs in calls]
    return [result for result, _ in cached_concurrently(train_task, trained, calls, at_once=split.processes)]


@flow(name="faerec", task_runner=ThreadPoolTaskRunner(max_workers=max(2, usable_cores())), log_prints=True)
def faerec_pipeline(config: PipelineParams = PipelineParams()) -> dict[str, Any]:  # noqa: B008 (a form default)
    """Prepare each dataset, embed its items, train every backbone x method, evaluate, publish artifacts."""
    log = get_run_logger()
    started = time.perf_counter()

    datasets = [cached(prepare_task, prepared, source=source, min_user=config.min_user_interactions,
                       min_item=config.min_item_interactions) for source in config.datasets]
    group_items = {d["dataset_id"]: artifacts.publish_dataset(d) for d in datasets}
    for d in datasets:
        log.info("prepared %s: %s users, %s items, %s interactions", d["dataset_id"], d["users"], d["items"],
                 d["interactions"])

    embeddings: list[dict[str, Any]] = []
    if set(text_methods()).intersection(config.methods):
        embeddings = embed_all(datasets, config.encoder, config.hidden)
        artifacts.publish_embeddings(embeddings, [d["dataset_id"] for d in datasets])

    jobs = [(d, train_config(config, backbone, method))
            for d in datasets for backbone in config.backbones for method in config.methods]
    if config.train_on == "gpu-pool":
        results = train_on_pool(jobs, config.train_deployment)
    else:
        # training tests the best weights itself: its metrics are the result, nothing is evaluated twice
        calls = [{"dataset_dir": d["path"], "config": cfg, "run_dir": run_dir_for(d["dataset_id"], cfg)}
                 for d, cfg in jobs]
        if config.parallel_training:  # fan out through the task runner (Dask, Ray, threads)
            results = [result for result, _ in cached_concurrently(train_task, trained, calls)]
        else:
            results = train_here(calls, config.training_processes, log)
    for metrics in results:
        artifacts.publish_curve(metrics)
        log.info("%s: test NDCG@10 overall %.4f, tail %.4f", Path(metrics["run_dir"]).name,
                 metrics["test"]["overall"]["ndcg@10"], metrics["test"]["tail"]["ndcg@10"])
    files = artifacts.publish_results(results, group_items, report_dir=folder.runs_root() / "report")
    recommendations = []
    if config.recommend_k > 0:  # top-K per user of every run, runs/<run>/recommendations.parquet
        for metrics in results:
            summary = recommend_task(run_dir=metrics["run_dir"], k=config.recommend_k)
            artifacts.publish_recommendations(summary)
            recommendations.append(summary)
            log.info("%s: %s recommendations for %s users in %s", Path(metrics["run_dir"]).name, summary["rows"],
                     summary["users"], summary["out"])
    return {"datasets": datasets, "embeddings": embeddings, "runs": results, "report_files": files,
            "recommendations": recommendations, "seconds": round(time.perf_counter() - started, 1)}
