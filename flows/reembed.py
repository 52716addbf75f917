"""The `faerec-reembed` flow (deployment `reembed`): re-prepare a catalogue, embed only what changed.

Scheduled (cron) and triggered by a `faerec.catalogue.changed` event (prefect.yaml). prepare runs again only
when the raw files changed (its cache key holds their sizes and mtimes); the embedding step always runs, and
the content-addressed cache sends only new or changed prompts to the encoder, then the PCA table is refreshed.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from faerec.defaults import SAMPLE_SOURCE
from flows import artifacts
from flows.tasks import cached, embed_task, prepare_task, prepared


@flow(name="faerec-reembed", log_prints=True)
def reembed_flow(source: str = SAMPLE_SOURCE, encoder: str = "minilm", pca_dim: int = 128,
                 min_user_interactions: int = 5, min_item_interactions: int = 5) -> dict[str, Any]:
    """Returns the embedding summary (items, embedded, cached, ...) and the catalogue fingerprint."""
    dataset = cached(prepare_task, prepared, source=source or SAMPLE_SOURCE, min_user=min_user_interactions,
                     min_item=min_item_interactions)
    # Never served from the task cache: the point is to look at the catalogue as it is now.
    summary = embed_task.with_options(refresh_cache=True)(dataset["path"], encoder, pca_dim)
    artifacts.publish_embeddings([summary], [dataset["dataset_id"]])
    get_run_logger().info("catalogue %s (fingerprint %s): %s items, %s embedded, %s from the cache",
                          dataset["dataset_id"], dataset["fingerprint"], summary.get("items"),
                          summary.get("embedded"), summary.get("cached"))
    return {**summary, "dataset_id": dataset["dataset_id"], "catalogue_fingerprint": dataset["fingerprint"]}
