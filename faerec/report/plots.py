"""The group-analysis figure (paper figure 4): a metric per popularity group for each run, with the number
of items in each group as bars behind. Rendered headless (Agg) to PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from faerec.report.metrics import group_labels, metric_label


def group_analysis_png(results: Sequence[dict[str, Any]], metric: str = "hr@10",
                       group_items: Mapping[str, int] | None = None, title: str = "") -> bytes:
    """A PNG: grouped bars of test ``metric`` per popularity group per run; items per group on a twin axis."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    labels = group_labels(results)
    if not labels:
        raise ValueError("no popularity-group metrics in these results")
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    x = np.arange(len(labels))
    if group_items:
        counts = [group_items.get(label, 0) for label in labels]
        twin = ax.twinx()
        twin.bar(x, counts, width=0.9, color="#d9d9d9", zorder=0, label="items in group")
        twin.set_ylabel("items in group (training count)")
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    n = len(results)
    width = 0.8 / max(n, 1)
    for i, r in enumerate(results):
        groups = (r.get("test") or {}).get("groups") or {}
        values = [(groups.get(label) or {}).get(metric) or 0.0 for label in labels]
        name = f"{r.get('backbone')}-{r.get('method')}"
        if len({str(q.get("dataset")) for q in results}) > 1:
            name = f"{r.get('dataset')}: {name}"
        ax.bar(x - 0.4 + width * (i + 0.5), values, width=width * 0.95, label=name, zorder=2)
    ax.set_xticks(x, labels)
    ax.set_xlabel("popularity group (training interactions of the test target)")
    ax.set_ylabel(f"test {metric_label(metric)}")
    ax.set_title(title or f"Group analysis: {metric_label(metric)} by item popularity")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
