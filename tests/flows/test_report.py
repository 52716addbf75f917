"""faerec.report: tables, improvements, the terminal table and the group plot, from metrics dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faerec import report
from faerec.errors import FaerecError
from faerec.report.markdown import fmt_percent, md_table, relative_change

KEYS = ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20")


def _part(scale: float) -> dict[str, float]:
    return {k: round(scale * (i + 1) / 100, 6) for i, k in enumerate(KEYS)}


def _metrics(method: str, scale: float, backbone: str = "sasrec", dataset: str = "toy-u5i5") -> dict:
    return {
        "dataset": dataset, "backbone": backbone, "method": method, "seed": 2024, "best_epoch": 3, "epochs_run": 5,
        "n_users_evaluated": 100, "device": "cpu",
        "timing": {"train_seconds_per_epoch": 1.5, "eval_seconds": 0.2, "total_seconds": 9.0},
        "test": {"overall": _part(scale), "head": _part(2 * scale), "tail": _part(scale / 2), "cold": _part(0),
                 "groups": {g: _part(scale * (i + 1)) for i, g in enumerate(report.POPULARITY_GROUPS)},
                 "coverage@10": 0.2 * scale, "tail_coverage@10": 0.1 * scale, "coverage@20": 0.3 * scale,
                 "tail_coverage@20": 0.0},
    }


def test_relative_change_and_format():
    assert relative_change(0.0642, 0.0521) == pytest.approx(0.23224568)
    assert fmt_percent(relative_change(0.0642, 0.0521)) == "+23.22%"
    assert fmt_percent(relative_change(0.05, 0.1)) == "-50.00%"
    assert relative_change(0.1, 0.0) is None and fmt_percent(None) == "n/a"


def test_md_table_escapes_and_aligns():
    table = md_table(["name", "value"], [["a|b", 0.5], ["c", None]])
    lines = table.splitlines()
    assert lines[1] == "| :--- | ---: |"
    assert "a\\|b" in lines[2] and "0.5000" in lines[2] and "–" in lines[3]


def test_metrics_table_has_improvement_rows_per_backbone():
    runs = [_metrics("faerec", 1.5), _metrics("base", 1.0), _metrics("base", 2.0, "fmlp"), _metrics("faerec", 1.0, "fmlp")]
    md = report.metrics_table_markdown(runs)
    sections = md.split("#### ")[1:]
    assert [s.splitlines()[0] for s in sections] == ["Overall", "Head", "Tail"]
    for section in sections:
        rows = [line for line in section.splitlines() if line.startswith("| ")]
        assert rows[0] == "| dataset | backbone | method | H@10 | N@10 | H@20 | N@20 |"
        body = rows[2:]
        # base first in each (dataset, backbone) group, then the method, then its Impr. row
        assert [r.split("|")[3].strip() for r in body] == ["base", "faerec", "**Impr. faerec vs base**"] * 2
        assert body[2].count("+50.00%") == 4  # sasrec: faerec is 1.5x base on every column
        assert body[5].count("-50.00%") == 4  # fmlp: faerec is 0.5x base
    tail = [line for line in sections[2].splitlines() if "| sasrec | base |" in line][0]
    assert tail.endswith("| 0.0150 | 0.0200 | 0.0250 | 0.0300 |")  # tail scale 0.5: hr@10 = 0.5 * 3 / 100


def test_groups_and_coverage_tables():
    runs = [_metrics("base", 1.0), _metrics("faerec", 1.2)]
    groups = report.groups_table_markdown(runs, "ndcg@20")
    assert "| 1-4 | 5-9 | 10-19 | 20-49 | 50+ |" in groups
    assert "+20.00%" in groups
    coverage = report.coverage_table_markdown(runs)
    assert "Tail-Coverage@20" in coverage and "n/a" in coverage  # 0 base tail coverage: undefined change
    facts = report.run_facts_markdown(runs)
    assert "| 1.5 |" in facts


def test_terminal_table_lines_up():
    text = report.metrics_table_text([_metrics("base", 1.0), _metrics("faerec", 1.5)])
    lines = text.splitlines()
    assert "OVERALL" in lines[0] and "TAIL" in lines[0]
    assert len({line.index("|") for line in lines if "|" in line}) == 1  # the first separator is one column
    assert lines[-2].split()[:2] == ["impr.", "faerec"] and lines[-2].count("+50.00%") == 12
    assert lines[-1].startswith("Protocol: novel (the whole input history is masked")  # every table says it


def test_head_tail_summary_counts_groups():
    counts = np.array([0, 1, 4, 5, 9, 10, 19, 20, 49, 50, 300])
    head = counts >= 49
    summary = report.head_tail_summary(counts, head)
    assert summary["group_items"] == {"1-4": 2, "5-9": 2, "10-19": 2, "20-49": 2, "50+": 2}
    assert summary["cold_items"] == 1 and summary["head_items"] == 3 and summary["head_min_train_count"] == 49
    assert summary["head_interaction_share"] == pytest.approx(399 / counts.sum())
    md = report.head_tail_markdown(summary, "toy")
    assert "0 (cold)" in md and "| head (top 20 % by training count) | 3 |" in md


def test_dataset_stats_lists_every_filter_round():
    stats = {"dataset_id": "toy-u5i5", "source": "local:/x", "raw": {"users": 10, "items": 8, "interactions": 50},
             "users": 6, "items": 5, "interactions": 35, "filter": {"min_user_interactions": 5,
             "min_item_interactions": 5, "iterative": True}, "sparsity": 0.1,
             "filter_rounds": [{"round": 0, "users": 10, "items": 8, "interactions": 50},
                               {"round": 1, "users": 7, "items": 5, "interactions": 38},
                               {"round": 2, "users": 6, "items": 5, "interactions": 35}]}
    md = report.dataset_stats_markdown(stats)
    assert "| 2 | 6 | 5 | 35 | 3 |" in md and "| 1 | 7 | 5 | 38 | 12 |" in md
    assert "5, 5 iterative" in md


def test_training_curve_reads_history(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(json.dumps(r) for r in [
        {"epoch": 1, "loss": 1.2, "rec": 1.0, "item_align": 0.3, "total": 1.2, "improved": True, "valid": {"overall": {"ndcg@10": 0.01, "ndcg@20": 0.02}},
         "train_seconds": 2.0},
        {"epoch": 2, "loss": 0.9, "rec": 0.8, "item_align": 0.2, "total": 0.9, "improved": True, "valid": {"overall": {"ndcg@10": 0.02, "ndcg@20": 0.03}},
         "train_seconds": 2.1},
    ]) + "\n")
    md = report.training_curve_markdown(report.read_history(history), "toy / sasrec / faerec", best_epoch=2)
    lines = md.splitlines()
    assert "| epoch | loss | rec | item_align | valid NDCG@10 | valid NDCG@20 | train s |" in lines
    assert "| 2 * | 0.9000 | 0.8000 | 0.2000 | 0.0200 | 0.0300 | 2.1 |" in lines
    history.write_text('{"epoch": 1}\nnot json\n')
    with pytest.raises(FaerecError, match="line 2"):
        report.read_history(history)


def test_group_plot_is_a_png():
    png = report.group_analysis_png([_metrics("base", 1.0), _metrics("faerec", 1.3)],
                                    group_items={"1-4": 40, "5-9": 20, "10-19": 9, "20-49": 4, "50+": 1})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    with pytest.raises(ValueError):
        report.group_analysis_png([{"dataset": "x", "test": {}}])
