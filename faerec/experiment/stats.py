"""Per-user metrics from a run's user_ranks.parquet, and the paired tests of one row against the reference.

Pairing rule. Two rows (say faerec and base) of the same dataset and backbone are compared on the seeds both
have. For each row, a user's metric (NDCG@10 or HR@10 of the user's single test target) is averaged over
those seeds; the two rows are then paired by ``user_idx`` (the same dataset has the same test users) and
tested with the paired t-test (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``, zero differences dropped), both two-sided. Averaging over seeds first keeps the user
as the unit of the test (n = users, not users x seeds, which would count each user several times) while
using every seed to reduce the training noise of each user's value. The marker comes from the t-test:
``**`` p < 0.01, ``*`` p < 0.05. Where every paired difference is zero (or fewer than two users are
paired) the tests are undefined and reported as None.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from faerec.errors import FaerecError
from faerec.runs import folder

TEST_METRICS = ("ndcg@10", "hr@10")
TEST_PARTS = ("overall", "tail")


def read_user_ranks(run_dir: str | Path) -> pl.DataFrame:
    path = Path(run_dir) / folder.USER_RANKS
    if not path.exists():
        raise FaerecError("no user_ranks.parquet: the run has not finished (or predates per-user results; "
                          "`faerec evaluate` writes it)", path=Path(run_dir))
    return pl.read_parquet(path)


def user_metric(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-user HR@K (0/1) or NDCG@K (1/log2(rank + 2) inside the top K) from 0-based ranks."""
    name, k = metric.split("@")
    ranks = np.asarray(ranks, dtype=np.float64)
    inside = ranks < int(k)
    if name == "hr":
        return inside.astype(np.float64)
    if name == "ndcg":
        return np.where(inside, 1.0 / np.log2(ranks + 2.0), 0.0)
    raise ValueError(f"unknown metric {metric!r}")


def part_mask(frame: pl.DataFrame, part: str) -> np.ndarray:
    if part == "overall":
        return np.ones(frame.height, dtype=bool)
    is_head = frame["is_head"].to_numpy().astype(bool)
    if part == "head":
        return is_head
    if part == "tail":
        return ~is_head
    raise ValueError(f"unknown part {part!r}")


def seed_mean(frames: Sequence[pl.DataFrame], metric: str, part: str) -> pl.DataFrame:
    """``user_idx`` and the user's metric averaged over the given runs (users every run has), in one part."""
    if not frames:
        raise ValueError("no runs to average")
    joined: pl.DataFrame | None = None
    for i, frame in enumerate(frames):
        mask = part_mask(frame, part)
        values = pl.DataFrame({"user_idx": frame["user_idx"].to_numpy()[mask],
                               f"v{i}": user_metric(frame["rank"].to_numpy()[mask], metric)})
        joined = values if joined is None else joined.join(values, on="user_idx", how="inner")
    columns = [c for c in joined.columns if c != "user_idx"]
    return joined.select("user_idx", pl.mean_horizontal(columns).alias("value")).sort("user_idx")


def paired(values: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Paired t-test and Wilcoxon signed-rank test of ``values`` against ``reference`` (same users, same order)."""
    values, reference = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    out: dict[str, Any] = {"n_users": int(len(values)),
                           "mean": float(values.mean()) if len(values) else None,
                           "reference_mean": float(reference.mean()) if len(reference) else None,
                           "t_stat": None, "t_p": None, "w_stat": None, "w_p": None}
    if out["mean"] is not None:
        out["diff"] = out["mean"] - out["reference_mean"]
    if len(values) < 2 or not np.any(values != reference):
        return out
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = stats.ttest_rel(values, reference)
        w = stats.wilcoxon(values, reference)
    out.update(t_stat=_finite(t.statistic), t_p=_finite(t.pvalue), w_stat=_finite(w.statistic),
               w_p=_finite(w.pvalue))
    return out


def marker(p: float | None) -> str:
    if p is None:
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def compare(runs: dict[int, pl.DataFrame], reference: dict[int, pl.DataFrame], metric: str,
            part: str) -> dict[str, Any]:
    """The pairing rule above: ``runs`` and ``reference`` map seed -> user ranks of one row each."""
    seeds = sorted(set(runs) & set(reference))
    if not seeds:
        return {"seeds": [], "n_users": 0, "t_p": None, "w_p": None, "marker": "",
                "note": "no seed in common with the reference"}
    mine = seed_mean([runs[s] for s in seeds], metric, part)
    theirs = seed_mean([reference[s] for s in seeds], metric, part)
    both = mine.join(theirs, on="user_idx", how="inner", suffix="_reference")
    result = paired(both["value"].to_numpy(), both["value_reference"].to_numpy())
    result["seeds"] = seeds
    result["marker"] = marker(result["t_p"])
    return result


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
