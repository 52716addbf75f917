"""The `faerec-reembed` flow (deployment `reembed`): re-prepare a catalogue, embed only what changed.

Scheduled (cron) and triggered by a `faerec.catalogue.changed` event (prefect.yaml). prepare runs again only
when the raw files changed (its cache key holds their sizes and mtimes); the embedding step always runs, and
the content-addressed cache sends only new or changed prompts to the encoder, then the PCA table is refreshed.

Then the recommendations follow the catalogue: the latest finished run of the dataset (runs/<dataset>-*/ with
the newest metrics.json) re-exports runs/<run>/recommendations.parquet, so new catalogue items (candidate-only
items) are recommended by a method that can represent them from their text, without retraining. With
``retrain_share`` > 0, a re-embedding that changed or added more than that share of the items triggers the
`faerec/full-pipeline` deployment for the dataset instead (run_deployment; without a Prefect server or that
deployment the log says so and the export is refreshed anyway).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from faerec.defaults import SAMPLE_SOURCE
from faerec.runs import folder as run_folder
from flows import artifacts
from flows.tasks import cached, embed_task, prepare_task, prepared, recommend_task

PIPELINE_DEPLOYMENT = "faerec/full-pipeline"


def latest_finished_run(dataset_id: str, root: Path | None = None) -> Path | None:
    """The run folder of ``dataset_id`` (its config.json says so) whose metrics.json is the newest."""
    root = run_folder.runs_root() if root is None else root
    finished = []
    for metrics in root.glob(f"{dataset_id}-*/{run_folder.METRICS}"):
        try:
            config = json.loads((metrics.parent / run_folder.CONFIG).read_text())
        except (OSError, ValueError):
            continue
        if config.get("dataset") == dataset_id:  # "<id>-*" also matches e.g. "<id>-new0.1s2024-..." runs
            finished.append((metrics.stat().st_mtime_ns, metrics.parent))
    return max(finished)[1] if finished else None


def trigger_pipeline(deployment: str, parameters: dict[str, Any]) -> str | None:
    """Start ``deployment`` without waiting; the flow run id, or None (logged) when that is not possible."""
    from prefect.deployments import run_deployment

    log = get_run_logger()
    try:
        flow_run = run_deployment(name=deployment, parameters=parameters, timeout=0)
    except Exception as exc:  # noqa: BLE001 - no server, no deployment, no worker: say so and carry on
        log.warning("could not start the %s deployment (%s: %s): no Prefect server with that deployment is "
                    "reachable (start one with `faerec serve`); retrain by hand with `faerec pipeline %s`",
                    deployment, type(exc).__name__, exc, " ".join(parameters["config"]["datasets"]))
        return None
    log.info("retraining: started %s (flow run %s)", deployment, flow_run.id)
    return str(flow_run.id)


@flow(name="faerec-reembed", log_prints=True)
def reembed_flow(source: str = SAMPLE_SOURCE, encoder: str = "minilm", pca_dim: int = 128,
                 min_user_interactions: int = 5, min_item_interactions: int = 5, recommend_k: int = 20,
                 retrain_share: float = 0.0, pipeline_deployment: str = PIPELINE_DEPLOYMENT) -> dict[str, Any]:
    """Returns the embedding summary (items, embedded, cached, ...), the catalogue fingerprint, and what was
    done about the recommendations ("recommendations" or "retrain")."""
    log = get_run_logger()
    source = source or SAMPLE_SOURCE
    dataset = cached(prepare_task, prepared, source=source, min_user=min_user_interactions,
                     min_item=min_item_interactions)
    # Never served from the task cache: the point is to look at the catalogue as it is now.
    summary = embed_task.with_options(refresh_cache=True)(dataset["path"], encoder, pca_dim)
    artifacts.publish_embeddings([summary], [dataset["dataset_id"]])
    log.info("catalogue %s (fingerprint %s): %s items (%s candidate-only), %s embedded, %s from the cache",
             dataset["dataset_id"], dataset["fingerprint"], summary.get("items"), summary.get("candidate_items", 0),
             summary.get("embedded"), summary.get("cached"))
    out = {**summary, "dataset_id": dataset["dataset_id"], "catalogue_fingerprint": dataset["fingerprint"]}

    changed = summary["embedded"] / summary["items"] if summary.get("items") else 0.0
    out["changed_share"] = round(changed, 6)
    if retrain_share > 0 and changed > retrain_share:
        log.info("%.1f %% of the items are new or changed (more than retrain_share %.1f %%): retraining",
                 100 * changed, 100 * retrain_share)
        config = {"datasets": [source], "encoder": encoder, "hidden": pca_dim,
                  "min_user_interactions": min_user_interactions, "min_item_interactions": min_item_interactions,
                  "recommend_k": recommend_k}
        flow_run = trigger_pipeline(pipeline_deployment, {"config": config})
        out["retrain"] = {"deployment": pipeline_deployment, "flow_run": flow_run, "started": flow_run is not None}
        if flow_run is not None:
            return out
    if recommend_k > 0:
        out["recommendations"] = refresh_recommendations(dataset, recommend_k)
    return out


def refresh_recommendations(dataset: dict[str, Any], k: int) -> dict[str, Any] | None:
    """Re-export the latest finished run's recommendations (new candidate items included where possible)."""
    from faerec.errors import FaerecError

    log = get_run_logger()
    run_dir = latest_finished_run(dataset["dataset_id"])
    if run_dir is None:
        log.info("no finished run of %s under %s: no recommendations to refresh", dataset["dataset_id"],
                 run_folder.runs_root())
        return None
    try:
        result = recommend_task(run_dir=str(run_dir), k=k, dataset_dir=dataset["path"])
    except FaerecError as exc:  # e.g. trained items' texts changed: the run must be retrained first
        log.warning("could not refresh the recommendations of %s: %s", run_dir.name, exc)
        return {"run_dir": str(run_dir), "error": str(exc)}
    artifacts.publish_recommendations(result)
    log.info("refreshed %s: %s rows for %s users (%s candidate-only items, recommendable: %s)", result["out"],
             result["rows"], result["users"], result.get("candidate_items"), result.get("candidates_recommendable"))
    return result
