"""Dataset statistics and the head/tail split as Markdown (inputs: stats.json and popularity counts)."""

from __future__ import annotations

from typing import Any

import numpy as np

from faerec.data.split import GROUP_LABELS, group_of
from faerec.report.markdown import fmt_count, md_table

# The popularity groups of the paper's figure 4, by training interaction count (faerec.data.split).
POPULARITY_GROUPS: tuple[str, ...] = GROUP_LABELS


def dataset_stats_markdown(stats: dict[str, Any]) -> str:
    """Counts, the filter settings and every k-core round of a prepared dataset (its stats.json)."""
    name = stats.get("dataset_id", "dataset")
    rows: list[list[Any]] = []
    raw = stats.get("raw") or {}
    for label, key in (("users", "users"), ("items", "items"), ("interactions", "interactions")):
        rows.append([label, fmt_count(raw.get(key)), fmt_count(stats.get(key))])
    summary = md_table(["", "raw", "after k-core"], rows, align="lrr")

    details: list[list[Any]] = []
    flt = stats.get("filter") or {}
    if flt:
        details.append(["k-core (users, items)", f"{flt.get('min_user_interactions')}, "
                        f"{flt.get('min_item_interactions')}" + (" iterative" if flt.get("iterative") else "")])
    for label, key, fmt in (
        ("sparsity", "sparsity", lambda v: f"{v * 100:.3f}%"),
        ("average sequence length", "avg_sequence_length", lambda v: f"{v:.2f}"),
        ("longest sequence", "max_sequence_length", fmt_count),
        ("users not evaluable (< 3)", "users_not_evaluable", fmt_count),
        ("exact duplicates dropped", "duplicates_dropped", fmt_count),
        ("repeated user-item pairs kept", "repeated_user_item_pairs_kept", fmt_count),
        ("items without metadata", "items_without_metadata", fmt_count),
        ("catalogue fingerprint", "catalogue_fingerprint", str),
    ):
        if stats.get(key) is not None:
            details.append([label, fmt(stats[key])])
    split = stats.get("split")
    if split:
        details.append(["train / valid / test interactions",
                        " / ".join(fmt_count(split.get(k)) for k in ("train", "valid", "test"))])

    parts = [f"### Dataset `{name}`", f"Source: `{stats.get('source', '?')}`", "", summary]
    if details:
        parts += ["", md_table(["statistic", "value"], details, align="lr")]
    rounds = stats.get("filter_rounds") or []
    if rounds:
        round_rows = []
        previous = None
        for r in rounds:
            removed = None if previous is None else previous["interactions"] - r["interactions"]
            round_rows.append([r["round"], fmt_count(r["users"]), fmt_count(r["items"]),
                               fmt_count(r["interactions"]), fmt_count(removed)])
            previous = r
        parts += ["", "#### k-core filter rounds (round 0 = after duplicate removal)", "",
                  md_table(["round", "users", "items", "interactions", "removed"], round_rows, align="rrrrr")]
    return "\n".join(parts) + "\n"


def head_tail_summary(train_count: np.ndarray, is_head: np.ndarray) -> dict[str, Any]:
    """Head/tail split facts from per-item training counts (arrays over real items, padding excluded)."""
    train_count = np.asarray(train_count, dtype=np.int64)
    is_head = np.asarray(is_head, dtype=bool)
    total = int(train_count.sum())
    head_inter = int(train_count[is_head].sum())
    groups = group_of(train_count)
    return {
        "items": int(train_count.size),
        "head_items": int(is_head.sum()),
        "tail_items": int((~is_head).sum()),
        "head_min_train_count": int(train_count[is_head].min()) if is_head.any() else None,
        "tail_max_train_count": int(train_count[~is_head].max()) if (~is_head).any() else None,
        "train_interactions": total,
        "head_interaction_share": head_inter / total if total else None,
        "cold_items": int((train_count == 0).sum()),
        "group_items": {label: int((groups == i).sum()) for i, label in enumerate(POPULARITY_GROUPS)},
        "group_interactions": {label: int(train_count[groups == i].sum())
                               for i, label in enumerate(POPULARITY_GROUPS)},
    }


def head_tail_markdown(summary: dict[str, Any], dataset: str = "") -> str:
    share = summary.get("head_interaction_share")
    items = summary["items"] or 1
    rows = [
        ["head (top 20 % by training count)", fmt_count(summary["head_items"]),
         f"{summary['head_items'] / items * 100:.1f}%",
         f"{share * 100:.1f}%" if share is not None else "–",
         f">= {summary['head_min_train_count']}" if summary["head_min_train_count"] is not None else "–"],
        ["tail", fmt_count(summary["tail_items"]), f"{summary['tail_items'] / items * 100:.1f}%",
         f"{(1 - share) * 100:.1f}%" if share is not None else "–",
         f"<= {summary['tail_max_train_count']}" if summary["tail_max_train_count"] is not None else "–"],
    ]
    parts = [f"### Head / tail split{f' of `{dataset}`' if dataset else ''}",
             "Popularity = interactions in the training part only (validation and test targets excluded).", "",
             md_table(["part", "items", "share of items", "share of training interactions", "training count"],
                      rows, align="lrrrr")]
    total = summary["train_interactions"] or 1
    group_rows = [[label, fmt_count(n), f"{summary['group_interactions'][label] / total * 100:.1f}%"]
                  for label, n in summary["group_items"].items()]
    group_rows.append(["0 (cold)", fmt_count(summary["cold_items"]), "0.0%"])
    parts += ["", "#### Popularity groups (training count)", "",
              md_table(["group", "items", "share of training interactions"], group_rows, align="lrr")]
    return "\n".join(parts) + "\n"
