"""A plain-text metrics table for the terminal (the end of ``faerec pipeline``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faerec.report.markdown import fmt_metric, fmt_percent
from faerec.report.metrics import (
    PARTS,
    TABLE_METRICS,
    grouped_runs,
    improvement_rows,
    main_values,
    metric_label,
    protocol_note,
)


def metrics_table_text(results: Sequence[dict[str, Any]], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """Fixed-width columns: dataset / backbone / method, then overall, head and tail metrics; Impr. rows."""
    head = ["dataset", "backbone", "method", *[metric_label(m) for _ in PARTS for m in metrics]]
    body: list[list[str]] = []
    for (dataset, backbone), runs in grouped_runs(results):
        for r in runs:
            body.append([dataset, backbone, str(r.get("method")), *[fmt_metric(v) for v in main_values(r, metrics)]])
        for method, changes in improvement_rows(runs, lambda r: main_values(r, metrics)):
            body.append(["", "", f"impr. {method}", *[fmt_percent(c) for c in changes]])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    n_label = 3
    span = len(metrics)

    def line(cells: list[str]) -> str:
        left = "  ".join(c.ljust(w) for c, w in zip(cells[:n_label], widths[:n_label], strict=True))
        blocks = []
        for p in range(len(PARTS)):
            cols = range(n_label + p * span, n_label + (p + 1) * span)
            blocks.append(" ".join(cells[i].rjust(widths[i]) for i in cols))
        return left + "  |  " + "  |  ".join(blocks)

    block_width = [sum(widths[n_label + p * span: n_label + (p + 1) * span]) + span - 1 for p in range(len(PARTS))]
    label_width = sum(widths[:n_label]) + 2 * (n_label - 1)
    title = " " * label_width + "  |  " + "  |  ".join(
        part.upper().center(w) for part, w in zip(PARTS, block_width, strict=True))
    rule = "-" * len(title)
    lines = [title, line(head), rule, *[line(row) for row in body], protocol_note(results).replace("`", "")]
    return "\n".join(lines)
