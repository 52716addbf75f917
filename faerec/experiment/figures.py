"""The experiment's figures as PNG bytes (matplotlib, Agg backend): sweep curves (paper figure 3) and grouped
bars by popularity group (figure 4). Error bars are the sample std over seeds where there are several."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from faerec.data.split import GROUP_LABELS
from faerec.experiment.aggregate import Aggregate, Row
from faerec.experiment.spec import format_value
from faerec.report.metrics import metric_label

LOG_SPAN = 20.0  # a swept field whose positive values span more than this factor gets a log x-axis


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()


def log_axis(values: Sequence[Any]) -> bool:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return len(numbers) == len(values) and bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) > LOG_SPAN


def sweep_png(agg: Aggregate, field_name: str, metric: str = "hr@10", part: str = "overall") -> bytes:
    """Test ``metric`` against the values of ``field_name``: one line per (dataset, backbone, row); rows of
    the same dataset and backbone that were not swept (e.g. base) are drawn as dashed reference lines."""
    plt = pyplot()
    swept = [r for r in agg.rows if r.sweep and r.sweep[0] == field_name]
    if not swept:
        raise ValueError(f"no runs swept {field_name!r}")
    values = list(dict.fromkeys(r.sweep[1] for r in swept))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    several = len({(r.dataset, r.backbone) for r in swept}) > 1
    for dataset, backbone, arm in dict.fromkeys((r.dataset, r.backbone, r.arm) for r in swept):
        line = sorted((r for r in swept if (r.dataset, r.backbone, r.arm) == (dataset, backbone, arm)),
                      key=lambda r: values.index(r.sweep[1]))
        xs = [r.sweep[1] if numeric else values.index(r.sweep[1]) for r in line]
        cells = [r.parts[part][metric] for r in line]
        name = f"{dataset} / {backbone} / {arm}" if several else arm
        ax.errorbar(xs, [c.mean for c in cells], yerr=_errors(cells), marker="o", capsize=3, label=name)
    for r in agg.rows:
        if r.sweep is None and any((r.dataset, r.backbone) == (s.dataset, s.backbone) for s in swept):
            name = f"{r.dataset} / {r.backbone} / {r.label}" if several else r.label
            ax.axhline(r.parts[part][metric].mean, linestyle="--", color="grey", linewidth=1)
            ax.annotate(name, xy=(0.01, r.parts[part][metric].mean), xycoords=("axes fraction", "data"),
                        va="bottom", fontsize=8, color="grey")
    if numeric and log_axis(values):
        ax.set_xscale("log")
    if numeric:
        ax.set_xticks(values, [format_value(v) for v in values])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(values)), [format_value(v) for v in values])
    ax.set_xlabel(field_name)
    ax.set_ylabel(f"test {part} {metric_label(metric)}")
    seeds = sorted({len(r.seeds) for r in swept})
    ax.set_title(f"{metric_label(metric)} against {field_name}" + (f" (mean ± std, {seeds[-1]} seeds)"
                                                                   if seeds[-1] > 1 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def groups_png(agg: Aggregate, dataset: str, backbone: str, metric: str = "ndcg@10",
               labels: Sequence[str] | None = None) -> bytes:
    """Grouped bars: test ``metric`` per popularity group, one bar per row, with the test users per group."""
    plt = pyplot()
    import numpy as np

    rows: list[Row] = [r for r in agg.rows if (r.dataset, r.backbone) == (dataset, backbone)
                       and (labels is None or r.label in labels)]
    if not rows:
        raise ValueError(f"no rows for {dataset} / {backbone}")
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(GROUP_LABELS) + 0.35 * len(rows)), 4.4), dpi=110)
    x = np.arange(len(GROUP_LABELS))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        cells = [r.groups[g][metric] for g in GROUP_LABELS]
        means = [c.mean if c.mean is not None else 0.0 for c in cells]
        ax.bar(x - 0.4 + width * (i + 0.5), means, width=width * 0.95, yerr=_errors(cells), capsize=2,
               label=r.label)
    users = rows[0].group_users
    ax.set_xticks(x, [f"{g}\n({users.get(g, 0)} users)" for g in GROUP_LABELS])
    ax.set_xlabel("popularity group (training interactions of the test target)")
    ax.set_ylabel(f"test {metric_label(metric)}")
    seeds = max(len(r.seeds) for r in rows)
    ax.set_title(f"{dataset} / {backbone}: {metric_label(metric)} by item popularity"
                 + (f" (mean ± std, {seeds} seeds)" if seeds > 1 else ""))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def _errors(cells) -> list[float] | None:
    """Error bars: the std over seeds; none at all where every cell has a single seed."""
    if all(c.std is None for c in cells):
        return None
    return [c.std or 0.0 for c in cells]
