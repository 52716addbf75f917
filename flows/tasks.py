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
from prefect.tasks import Task

from faerec.data import folder
from faerec.runs import folder as run_folder
from flows import keys

RESULT_SERIALIZER = "json"


@task(name="prepare", task_run_name="prepare {source}", persist_result=True, result_serializer=RESULT_SERIALIZER,
      cache_key_fn=lambda _ctx, p: keys.prepare_key(p["source"], p["min_user"], p["min_item"]))
def prepare_task(source: str, min_user: int = 5, min_item: int = 5) -> dict[str, Any]:
    from faerec.data.prepare import prepare

    return prepare(source, min_user=min_user, min_item=min_item, progress=False)


@task(name="embed", task_run_name="embed {dataset_dir} with {encoder}", retries=2, retry_delay_seconds=[10, 60],
      persist_result=True, result_serializer=RESULT_SERIALIZER,
      cache_key_fn=lambda _ctx, p: keys.embed_key(p["dataset_dir"], p["encoder"], p["pca_dim"]))
def embed_task(dataset_dir: str, encoder: str = "minilm", pca_dim: int = 128) -> dict[str, Any]:
    """Embed the prompts not yet in the content-addressed cache; retried (an API encoder can fail transiently)."""
    from faerec.text.embed import embed_dataset
    from flows.secrets import prefect_secret

    return _jsonable(embed_dataset(dataset_dir, encoder, pca_dim=pca_dim, progress=False,
                                   secret_lookup=prefect_secret))


@task(name="train", task_run_name="train {run_dir}", persist_result=True, result_serializer=RESULT_SERIALIZER,
      cache_key_fn=lambda _ctx, p: keys.train_key(p["dataset_dir"], p["config"], p["run_dir"]))
def train_task(dataset_dir: str, config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Train in this process (CPU or local CUDA); resumes from run_dir's checkpoint after a crash."""
    from faerec.runs.config import TrainConfig
    from faerec.train.run import train_run

    metrics = train_run(dataset_dir, TrainConfig.from_dict(config), out_dir=run_dir, resume=True, progress=False)
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


def cached(stage: Task, valid: Callable[[dict[str, Any]], bool], **kwargs: Any) -> dict[str, Any]:
    """Call ``stage``; if a cached result points at outputs that are gone, run it again without the cache."""
    result = stage(**kwargs)
    if not valid(result):
        result = stage.with_options(refresh_cache=True)(**kwargs)
    return result


def cached_concurrently(
    stage: Task, valid: Callable[[dict[str, Any]], bool], calls: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], bool]]:
    """``cached`` for many calls submitted at once through the task runner; returns (result, from_cache)."""
    futures = [stage.submit(**kwargs) for kwargs in calls]
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
