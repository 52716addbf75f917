"""Result tables over several runs (metrics.json dicts, docs/CONTRACT.md): overall/head/tail, groups, coverage.

Rows are grouped per (dataset, backbone), methods in the order given; after them, one "Impr." row per
non-base method gives its relative change over the base method, like the paper's table 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faerec.report.markdown import fmt_metric, fmt_percent, md_table, relative_change

PARTS = ("overall", "head", "tail")
TABLE_METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20")
COVERAGE_KEYS = ("coverage@10", "tail_coverage@10", "coverage@20", "tail_coverage@20")
BASE_METHOD = "base"


def metric_label(metric: str) -> str:
    """"ndcg@10" -> "N@10", "hr@20" -> "H@20" (the paper's column names)."""
    name, k = metric.split("@")
    return f"{'H' if name == 'hr' else 'N' if name == 'ndcg' else name}@{k}"


def grouped_runs(results: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """Runs grouped by (dataset, backbone) in first-appearance order; the base method first in each group."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((str(r.get("dataset", "")), str(r.get("backbone", ""))), []).append(r)
    for runs in groups.values():
        runs.sort(key=lambda r: 0 if r.get("method") == BASE_METHOD else 1)
    return list(groups.items())


def improvement_rows(runs: list[dict[str, Any]], values) -> list[tuple[str, list[float | None]]]:
    """For each non-base method: relative change of each value over the base run (empty without a base)."""
    base = next((r for r in runs if r.get("method") == BASE_METHOD), None)
    if base is None:
        return []
    reference = values(base)
    out = []
    for r in runs:
        if r is base:
            continue
        out.append((str(r.get("method")), [relative_change(v, ref) for v, ref in zip(values(r), reference, strict=True)]))
    return out


def table_rows(results: Sequence[dict[str, Any]], values) -> list[list[str]]:
    """Markdown rows: one per run (dataset, backbone, method, formatted values), each (dataset, backbone)
    group followed by its "Impr." rows."""
    rows: list[list[str]] = []
    for (dataset, backbone), runs in grouped_runs(results):
        for r in runs:
            rows.append([f"`{dataset}`", backbone, str(r.get("method")), *[fmt_metric(v) for v in values(r)]])
        for method, changes in improvement_rows(runs, values):
            rows.append(["", "", f"**Impr. {method} vs base**", *[fmt_percent(c) for c in changes]])
    return rows


def _test(r: dict[str, Any]) -> dict[str, Any]:
    return r.get("test") or {}


def main_values(r: dict[str, Any], metrics: Sequence[str] = TABLE_METRICS) -> list[float | None]:
    test = _test(r)
    return [(test.get(part) or {}).get(m) for part in PARTS for m in metrics]


PROTOCOL_WORDS = {
    "novel": "the whole input history is masked, so a target that repeats a history item counts as a miss",
    "repeat": "no history is masked (repeat-aware), only the padding item",
}


def protocol_note(results: Sequence[dict[str, Any]]) -> str:
    """One line naming the evaluation protocol(s) of these runs and their repeat targets (docs/PROTOCOL.md)."""
    by_protocol: dict[str, int] = {}
    for r in results:
        test = _test(r)
        name = str(test.get("protocol") or r.get("protocol") or "novel")
        by_protocol[name] = max(by_protocol.get(name, 0), int(test.get("n_repeat_targets") or 0))
    parts = []
    for name, repeats in by_protocol.items():
        words = PROTOCOL_WORDS.get(name, name)
        extra = f"; {repeats} test users have a repeat target" if repeats else "; no repeat targets"
        parts.append(f"`{name}` ({words}{extra})")
    return "Protocol: " + ", ".join(parts) + "."


def metrics_table_markdown(results: Sequence[dict[str, Any]], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """Overall, head and tail HR and NDCG (one table each, so they fit a page) with "Impr." rows."""
    parts = ["### Test metrics (full ranking, leave-one-out)",
             "H = HR, N = NDCG. Head = top 20 % of items by training popularity, tail = the rest. "
             "Impr. = relative change over the base method of the same backbone (the paper's table 2).",
             protocol_note(results)]
    for part in PARTS:

        def values(r: dict[str, Any], part: str = part) -> list[float | None]:
            return [((_test(r).get(part) or {}).get(m)) for m in metrics]

        rows = table_rows(results, values)
        headers = ["dataset", "backbone", "method", *[metric_label(m) for m in metrics]]
        parts += ["", f"#### {part.capitalize()}", "", md_table(headers, rows, align="lll" + "r" * len(metrics))]
    return "\n".join(parts) + "\n"


def group_labels(results: Sequence[dict[str, Any]]) -> list[str]:
    labels: list[str] = []
    for r in results:
        for label in (_test(r).get("groups") or {}):
            if label not in labels:
                labels.append(label)
    return labels


def groups_table_markdown(results: Sequence[dict[str, Any]], metric: str = "ndcg@20") -> str:
    """One column per popularity group (training count of the test target), values of ``metric``."""
    labels = group_labels(results)
    if not labels:
        return "### Popularity groups\nNo group metrics in these runs.\n"

    def values(r: dict[str, Any]) -> list[float | None]:
        groups = _test(r).get("groups") or {}
        return [(groups.get(label) or {}).get(metric) for label in labels]

    headers = ["dataset", "backbone", "method", *labels]
    rows = table_rows(results, values)
    return (f"### Popularity groups: test {metric_label(metric)} by the target's training count\n\n"
            + protocol_note(results) + "\n\n" + md_table(headers, rows, align="lll" + "r" * len(labels)) + "\n")


def coverage_table_markdown(results: Sequence[dict[str, Any]]) -> str:
    """Coverage@K and Tail-Coverage@K (paper eq. 15) per run."""

    def values(r: dict[str, Any]) -> list[float | None]:
        return [_test(r).get(k) for k in COVERAGE_KEYS]

    headers = ["dataset", "backbone", "method", "Coverage@10", "Tail-Coverage@10", "Coverage@20",
               "Tail-Coverage@20"]
    rows = table_rows(results, values)
    return ("### Coverage\nDistinct items (and distinct tail items) in all users' top-K lists, "
            "divided by the number of items (tail items). " + protocol_note(results) + "\n\n"
            + md_table(headers, rows, align="lllrrrr") + "\n")


def run_facts_markdown(results: Sequence[dict[str, Any]]) -> str:
    """Per run: best epoch, epochs run, users evaluated, device and timings."""
    rows = []
    for r in results:
        timing = r.get("timing") or {}
        rows.append([f"`{r.get('dataset')}`", r.get("backbone"), r.get("method"), r.get("seed"),
                     r.get("best_epoch"), r.get("epochs_run"), r.get("n_users_evaluated"), r.get("device"),
                     _seconds(timing.get("train_seconds_per_epoch")), _seconds(timing.get("eval_seconds")),
                     _seconds(timing.get("total_seconds"))])
    return ("### Runs\n\n" + md_table(
        ["dataset", "backbone", "method", "seed", "best epoch", "epochs run", "users evaluated", "device",
         "train s/epoch", "eval s", "total s"], rows, align="lllrrrrlrrr") + "\n")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"
