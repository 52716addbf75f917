"""Prefect tasks over the library stages. Each one is a call into faerec/ plus a stable cache key.

Results are plain JSON dicts (paths and numbers), persisted with the JSON serializer, so a repeated run skips
finished stages and nothing is unpickled from the result store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.tasks import Task

from faerec.data import folder
from faerec.runs import folder as run_folder
from flows import keys

RESULT_SERIALIZER = "json"
RECOMMENDATIONS = "recommendations.parquet"  # runs/<run>/recommendations.parquet, the pipeline's export


@task(name="prepare", task_run_name="prepare {source}", persist_result=True, result_serializer=RESULT_SERIALIZER,
      cache_key_fn=lambda _ctx, p: keys.prepare_key(p["source"], p["min_user"], p["min_item"]))
def prepare_task(source: str, min_user: int = 5, min_item: int = 5) -> dict[str, Any]:
    from faerec.data.prepare import prepare

    return prepare(source, min_user=min_user, min_item=min_item, progress=False)


def _embed_key(params: dict[str, Any]) -> str:
    """keys.embed_key, plus the candidate-only items' fingerprint when the dataset has any: the catalogue
    fingerprint covers the trained items only, and new candidates must be embedded too."""
    key = keys.embed_key(params["dataset_dir"], params["encoder"], params["pca_dim"])
    stats = folder.read_stats(params["dataset_dir"])
    return f"{key}-c{stats.get('candidates_fingerprint')}" if stats.get("candidate_items") else key


@task(name="embed", task_run_name="embed {dataset_dir} with {encoder}", retries=2, retry_delay_seconds=[10, 60],
      persist_result=True, result_serializer=RESULT_SERIALIZER, cache_key_fn=lambda _ctx, p: _embed_key(p))
def embed_task(dataset_dir: str, encoder: str = "minilm", pca_dim: int = 128) -> dict[str, Any]:
    """Embed the prompts not yet in the content-addressed cache; retried (an API encoder can fail transiently)."""
    from faerec.text.embed import embed_dataset
    from flows.secrets import prefect_secret

    return _jsonable(embed_dataset(dataset_dir, encoder, pca_dim=pca_dim, progress=False,
                                   secret_lookup=prefect_secret))


@task(name="train", task_run_name="train {run_dir}", persist_result=True, result_serializer=RESULT_SERIALIZER,
      cache_key_fn=lambda _ctx, p: keys.train_key(p["dataset_dir"], p["config"], p["run_dir"]))
def train_task(dataset_dir: str, config: dict[str, Any], run_dir: str, threads: int | None = None) -> dict[str, Any]:
    """Train in this process (CPU or local CUDA), or with ``threads`` in a child process on that many torch
    threads (runs side by side, faerec.cores); resumes from run_dir's checkpoint after a crash."""
    from faerec.runs.config import TrainConfig

    cfg = TrainConfig.from_dict(config)
    if threads is None:
        from faerec.train.run import train_run

        metrics = train_run(dataset_dir, cfg, out_dir=run_dir, resume=True, progress=False)
    else:
        from faerec.experiment.runner import train_in_subprocess

        train_in_subprocess(dataset_dir, cfg, Path(run_dir), threads=threads)
        metrics = run_folder.read_metrics(run_dir)
    return _jsonable({**metrics, "run_dir": str(run_dir)})


@task(name="train-on-pool", task_run_name="train {run_dir} on {deployment}", persist_result=True,
      result_serializer=RESULT_SERIALIZER,
      cache_key_fn=lambda _ctx, p: "pool-" + keys.train_key(p["dataset_dir"], p["config"], p["run_dir"]))
def train_on_pool_task(dataset_dir: str, config: dict[str, Any], run_dir: str, deployment: str) -> dict[str, Any]:
    """Hand one training run to the training deployment (the gpu work pool) and wait for it.

    The run writes runs/<id>/ under the worker's project folder; on another machine that folder must be shared
    storage, since the metrics are read back from it.
    """
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name=deployment, parameters={"dataset_dir": dataset_dir, "config": config,
                                                           "run_dir": run_dir}, timeout=None, poll_interval=2)
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RuntimeError(f"training run {flow_run.name} on {deployment} ended {state.name if state else 'unknown'}"
                           f": {state.message if state else ''}")
    metrics_file = Path(run_dir) / run_folder.METRICS
    if not metrics_file.exists():
        raise RuntimeError(f"{deployment} completed but {metrics_file} is not visible here: the runs folder "
                           "must be shared between the pipeline's and the gpu pool's workers")
    return {**json.loads(metrics_file.read_text()), "run_dir": str(run_dir), "flow_run": str(flow_run.id)}


@task(name="recommend", task_run_name="recommend {run_dir} top {k}", cache_policy=NO_CACHE, persist_result=False)
def recommend_task(run_dir: str, k: int, dataset_dir: str | None = None) -> dict[str, Any]:
    """Export the run's top-k items for every user to runs/<run>/recommendations.parquet. Never cached: it
    reads the catalogue as it is now (new candidate items, re-embedded texts) and takes seconds."""
    from faerec.serve.recommend import export_recommendations

    return _jsonable(export_recommendations(run_dir, Path(run_dir) / RECOMMENDATIONS, k, dataset_dir=dataset_dir,
                                            progress=False))


def cached(stage: Task, valid: Callable[[dict[str, Any]], bool], **kwargs: Any) -> dict[str, Any]:
    """Call ``stage``; if a cached result points at outputs that are gone, run it again without the cache."""
    result = stage(**kwargs)
    if not valid(result):
        result = stage.with_options(refresh_cache=True)(**kwargs)
    return result


def cached_concurrently(
    stage: Task, valid: Callable[[dict[str, Any]], bool], calls: list[dict[str, Any]], at_once: int | None = None
) -> list[tuple[dict[str, Any], bool]]:
    """``cached`` for many calls submitted through the task runner, at most ``at_once`` running at a time
    (None: all submitted at once); returns (result, from_cache) in the order of ``calls``."""
    futures: list[PrefectFuture] = []
    running: list[PrefectFuture] = []
    for kwargs in calls:
        if at_once is not None and len(running) >= at_once:
            running.remove(next(as_completed(running)))
        futures.append(stage.submit(**kwargs))
        running.append(futures[-1])
    out = []
    for kwargs, future in zip(calls, futures, strict=True):
        result, from_cache = future.result(), future.state.name == "Cached"
        if not valid(result):
            result, from_cache = stage.with_options(refresh_cache=True)(**kwargs), False
        out.append((result, from_cache))
    return out


def prepared(result: dict[str, Any]) -> bool:
    stats = Path(result["path"]) / folder.STATS
    return stats.exists() and json.loads(stats.read_text()).get("catalogue_fingerprint") == result["fingerprint"]


def embedded(result: dict[str, Any]) -> bool:
    return all(Path(result[k]).exists() for k in ("path", "pca_path") if result.get(k))


def trained(result: dict[str, Any]) -> bool:
    return (Path(result["run_dir"]) / run_folder.METRICS).exists()


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON (numpy scalars, Paths -> plain values) so the JSON serializer accepts it."""
    return json.loads(json.dumps(value, default=_plain))


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)  # Path and the like
