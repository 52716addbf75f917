"""Aggregation from hand-made user_ranks files: mean/std over seeds, Impr., and the paired tests (vs scipy)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as scipy_stats

from faerec.experiment import figures, stats, tables
from faerec.experiment.aggregate import aggregate, mean_documents
from faerec.report import metrics_table_text

IS_HEAD = [True, True, False, False, False, False]
GROUPS = ["50+", "20-49", "1-4", "1-4", "5-9", None]
RANKS = {  # (row, seed) -> 0-based rank of users 0..5 (20 = outside the top 20)
    ("base", 1): [0, 3, 20, 20, 9, 20],
    ("base", 2): [1, 20, 20, 5, 20, 20],
    ("faerec", 1): [0, 1, 2, 20, 4, 7],
    ("faerec", 2): [0, 2, 1, 3, 20, 6],
}
COVERAGE = {("base", 1): 0.30, ("base", 2): 0.40, ("faerec", 1): 0.70, ("faerec", 2): 0.80}


def ndcg(rank: int) -> float:
    return 1 / math.log2(rank + 2) if rank < 10 else 0.0


def write_run(root: Path, label: str, seed: int, shuffle: bool = False, ranks: list[int] | None = None,
              coverage: float = 0.5) -> dict:
    run_dir = root / f"{label}-s{seed}"
    run_dir.mkdir(parents=True)
    ranks = RANKS[label, seed] if ranks is None else ranks
    coverage = COVERAGE.get((label, seed), coverage)
    frame = pl.DataFrame({"user_idx": list(range(6)), "item_idx": [5, 6, 7, 8, 9, 10], "rank": ranks,
                          "group": pl.Series(GROUPS, dtype=pl.Utf8), "is_head": IS_HEAD, "is_repeat": [False] * 6,
                          "train_count": [60, 30, 2, 3, 7, 0]})
    if shuffle:  # pairing goes by user_idx, not by row order
        frame = frame.reverse()
    frame.write_parquet(run_dir / "user_ranks.parquet")
    (run_dir / "metrics.json").write_text(json.dumps({"protocol": "novel", "test": {
        "coverage@10": coverage, "tail_coverage@10": coverage / 2}}))
    return {"dataset": "toy", "backbone": "sasrec", "label": label, "arm": label, "method": label, "seed": seed,
            "sweep": None, "run_dir": str(run_dir)}


@pytest.fixture
def entries(tmp_path: Path) -> list[dict]:
    return [write_run(tmp_path, label, seed, shuffle=(label == "faerec" and seed == 2))
            for label in ("base", "faerec") for seed in (1, 2)]


def test_mean_std_and_improvement_by_hand(entries):
    agg = aggregate(entries, reference="base")
    base, faerec = agg.row("toy", "sasrec", "base"), agg.row("toy", "sasrec", "faerec")
    # HR@10 per run: base 3/6 and 2/6, faerec 5/6 and 5/6
    hr = base.parts["overall"]["hr@10"]
    assert hr.values == pytest.approx([3 / 6, 2 / 6])
    assert hr.mean == pytest.approx(5 / 12) and hr.std == pytest.approx((3 / 6 - 2 / 6) / math.sqrt(2))
    assert faerec.parts["overall"]["hr@10"].mean == pytest.approx(5 / 6)
    assert faerec.parts["overall"]["hr@10"].std == pytest.approx(0.0)
    # NDCG@10 by hand
    base_ndcg = [sum(ndcg(r) for r in RANKS["base", s]) / 6 for s in (1, 2)]
    faerec_ndcg = [sum(ndcg(r) for r in RANKS["faerec", s]) / 6 for s in (1, 2)]
    assert base.parts["overall"]["ndcg@10"].mean == pytest.approx(np.mean(base_ndcg))
    assert base.parts["overall"]["ndcg@10"].std == pytest.approx(np.std(base_ndcg, ddof=1))
    # tail = users 2..5; base tail HR@10: seed 1 {9} -> 1/4, seed 2 {5} -> 1/4
    assert base.parts["tail"]["hr@10"].values == pytest.approx([0.25, 0.25])
    # Impr. = relative change of the means
    assert agg.improvement(faerec, "overall", "hr@10") == pytest.approx((5 / 6 - 5 / 12) / (5 / 12))
    assert agg.improvement(faerec, "overall", "ndcg@10") == pytest.approx(
        (np.mean(faerec_ndcg) - np.mean(base_ndcg)) / np.mean(base_ndcg))
    assert agg.improvement(base, "overall", "hr@10") is None
    # groups (user 5 is cold: no group) and coverage from metrics.json
    assert faerec.groups["1-4"]["hr@10"].values == pytest.approx([0.5, 1.0])
    assert base.group_users == {"1-4": 2, "5-9": 1, "10-19": 0, "20-49": 1, "50+": 1}
    assert faerec.coverage["coverage@10"].mean == pytest.approx(0.75)


def test_paired_tests_match_scipy_on_seed_averaged_users(entries):
    agg = aggregate(entries, reference="base")
    faerec = agg.row("toy", "sasrec", "faerec")
    for metric, per_user in (("ndcg@10", ndcg), ("hr@10", lambda r: float(r < 10))):
        mine = np.mean([[per_user(r) for r in RANKS["faerec", s]] for s in (1, 2)], axis=0)
        ref = np.mean([[per_user(r) for r in RANKS["base", s]] for s in (1, 2)], axis=0)
        test = agg.test(faerec, "overall", metric)
        assert test["seeds"] == [1, 2] and test["n_users"] == 6
        assert test["t_p"] == pytest.approx(scipy_stats.ttest_rel(mine, ref).pvalue)
        assert test["w_p"] == pytest.approx(scipy_stats.wilcoxon(mine, ref).pvalue)
        assert test["mean"] == pytest.approx(mine.mean()) and test["reference_mean"] == pytest.approx(ref.mean())
        assert test["marker"] == stats.marker(test["t_p"])
        tail = agg.test(faerec, "tail", metric)
        assert tail["n_users"] == 4
        assert tail["t_p"] == pytest.approx(scipy_stats.ttest_rel(mine[2:], ref[2:]).pvalue)


def test_pairing_uses_the_common_seeds_only(entries, tmp_path):
    extra = write_run(tmp_path / "more", "faerec", 3, ranks=[20] * 6)
    agg = aggregate([*entries, extra], reference="base")
    faerec = agg.row("toy", "sasrec", "faerec")
    assert faerec.seeds == [1, 2, 3]  # the row's mean covers every seed ...
    assert agg.test(faerec, "overall", "hr@10")["seeds"] == [1, 2]  # ... the test only those base also has


def test_markers_and_degenerate_tests():
    assert (stats.marker(0.009), stats.marker(0.02), stats.marker(0.2), stats.marker(None)) == ("**", "*", "", "")
    same = stats.paired(np.array([1.0, 0.0, 0.5]), np.array([1.0, 0.0, 0.5]))
    assert same["t_p"] is None and same["w_p"] is None and same["diff"] == 0.0
    assert stats.user_metric(np.array([0, 1, 9, 10, 20]), "hr@10").tolist() == [1, 1, 1, 0, 0]
    assert stats.user_metric(np.array([0, 1]), "ndcg@10") == pytest.approx([1.0, 1 / math.log2(3)])


def test_tables_and_figures_render(entries):
    agg = aggregate(entries, reference="base")
    main = tables.main_table(agg)
    text = main.markdown()
    faerec_line = next(line for line in text.splitlines() if line.startswith("| sasrec | faerec |"))
    test = agg.test(agg.row("toy", "sasrec", "faerec"), "overall", "hr@10")
    assert f"0.8333 ± 0.0000{test['marker']} |" in faerec_line
    assert "Impr. faerec vs base" in text and "+100.00%" in text  # HR@10: 5/6 over 5/12
    assert main.records()[0]["row"] == "base"
    sig = tables.significance_table(agg).records()
    assert len(sig) == 4 and {r["metric"] for r in sig} == {"Overall H@10", "Overall N@10", "Tail H@10", "Tail N@10"}
    assert "| toy | sasrec | faerec |" in tables.coverage_table(agg).markdown()
    assert tables.ablation_table(agg, "toy", ["faerec", "base"]).rows[0][0] == "faerec"
    assert figures.groups_png(agg, "toy", "sasrec")[:4] == b"\x89PNG"
    terminal = metrics_table_text(mean_documents(agg))
    assert "impr. faerec" in terminal and "0.8333" in terminal


def test_sweep_rows_table_and_log_axis(tmp_path):
    entries = []
    for value, ranks in ((0.001, [0, 20, 20, 20, 20, 20]), (0.1, [0, 0, 0, 20, 20, 20])):
        e = write_run(tmp_path / str(value), "faerec", 1, ranks=ranks)
        entries.append({**e, "label": f"faerec [bt_lambda={value:g}]", "arm": "faerec", "sweep": ["bt_lambda", value]})
    agg = aggregate(entries, reference="base")
    assert agg.reference is None and agg.tests == []
    sweep = tables.sweep_table(agg, "bt_lambda")
    assert sweep.headers[3:] == ["0.001", "0.1"] and sweep.rows[0][3:] == ["0.1667", "0.5000"]
    assert figures.log_axis([0.001, 0.005, 0.01, 0.1]) and not figures.log_axis([0.05, 0.1, 0.2, 0.5])
    assert figures.sweep_png(agg, "bt_lambda")[:4] == b"\x89PNG"
