"""The embedding-cache summary as Markdown (input: the dict ``embed_dataset`` returns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faerec.report.markdown import fmt_count, md_table


def embedding_summary_markdown(summaries: Sequence[dict[str, Any]], datasets: Sequence[str] | None = None) -> str:
    """One row per embedded dataset: items, newly embedded vs served from the cache, encoder, dimension, time."""
    rows = []
    for i, s in enumerate(summaries):
        items = s.get("items") or 0
        cached = s.get("cached")
        hit = f"{cached / items * 100:.1f}%" if items and cached is not None else "–"
        name = datasets[i] if datasets is not None else s.get("dataset", "")
        rows.append([
            f"`{name}`", fmt_count(items), fmt_count(s.get("embedded")), fmt_count(cached), hit,
            f"`{s.get('encoder', '?')}`", fmt_count(s.get("dim")), _share(s.get("pca_explained_variance")),
            f"{float(s.get('seconds', 0.0)):.1f}", f"`{str(s.get('fingerprint', ''))[:16]}`",
            "cached task: an earlier run's numbers" if s.get("stage") == "cached" else "ran",
        ])
    table = md_table(["dataset", "items", "embedded", "cached", "cache hits", "encoder", "dim", "PCA variance kept",
                      "seconds", "encoder fingerprint", "this run"], rows, align="lrrrrlrrrll")
    note = ("The cache is content-addressed (sha256 of the prompt under the encoder fingerprint): "
            "only new or changed prompts are sent to the encoder.")
    return "### Embedding cache\n" + note + "\n\n" + table + "\n"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"
