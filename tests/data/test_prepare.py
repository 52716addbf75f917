"""prepare on real data: k-core property, leave-one-out split, training-only popularity, outputs, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from faerec.data.dataset import Dataset
from faerec.data.kcore import iterative_kcore
from faerec.data.prepare import prepare


@pytest.fixture(scope="module")
def beauty10(beauty_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("beauty10")
    summary = prepare(str(beauty_dir), out, min_user=10, min_item=10, progress=False)
    return out, summary


def test_beauty_5core_counts(beauty_dir, tmp_path):
    summary = prepare(str(beauty_dir), tmp_path / "b5", progress=False)
    assert (summary["users"], summary["items"], summary["interactions"]) == (22363, 12101, 198502)
    stats = json.loads((tmp_path / "b5" / "stats.json").read_text())
    assert len(stats["filter_rounds"]) == 1  # the source already is a 5-core: nothing to remove


def test_beauty_10core_has_kcore_property_and_is_a_fixed_point(beauty10):
    out, summary = beauty10
    log = pl.read_parquet(out / "interactions.parquet")
    assert log.group_by("user_idx").len()["len"].min() >= 10
    assert log.group_by("item_idx").len()["len"].min() >= 10
    again, rounds = iterative_kcore(log, 10, 10, user="user_idx", item="item_idx")
    assert again.height == log.height and len(rounds) == 1
    stats = json.loads((out / "stats.json").read_text())
    assert len(stats["filter_rounds"]) > 2  # a single pass would not have been enough
    assert stats["filter_rounds"][-1]["interactions"] == summary["interactions"]


def test_single_pass_would_leave_violations(beauty_dir):
    """Why the filter iterates: one pass at k=10 leaves users below 10 on Beauty."""
    from faerec.data.sources.local import LocalSource

    log = LocalSource(beauty_dir).load().interactions
    one_pass = log.filter((pl.len().over("user_id") >= 10) & (pl.len().over("item_id") >= 10))
    assert one_pass.group_by("user_id").len()["len"].min() < 10


def test_ids_and_order(prepared_sample):
    log = pl.read_parquet(prepared_sample / "interactions.parquet")
    assert log.schema == {"user_idx": pl.Int32, "item_idx": pl.Int32, "timestamp": pl.Int64}
    assert log["item_idx"].min() == 1  # 0 is padding
    assert log["user_idx"].min() == 0
    assert log.equals(log.sort(["user_idx", "timestamp"], maintain_order=True))
    items = pl.read_parquet(prepared_sample / "items.parquet")
    assert items["item_idx"].to_list() == list(range(1, items.height + 1))
    assert set(items.columns) >= {"item_id", "title", "brand", "categories", "description", "price"}


def test_leave_one_out_split(prepared_sample):
    ds = Dataset.load(prepared_sample)
    raw = pl.read_parquet(prepared_sample / "interactions.parquet")
    user = 17
    seq = raw.filter(pl.col("user_idx") == user)["item_idx"].to_list()
    assert ds.items[ds.offsets[user]:ds.offsets[user + 1]].tolist() == seq
    assert ds.train_lengths[user] == len(seq) - 2
    assert ds.evaluable.all()
    stats = ds.stats
    assert stats["split"]["valid"] == stats["split"]["test"] == stats["users"]
    assert stats["split"]["train"] == stats["interactions"] - 2 * stats["users"]


def test_popularity_counts_only_training_part(prepared_sample):
    ds = Dataset.load(prepared_sample)
    train_items = np.concatenate([
        ds.items[ds.offsets[u]:ds.offsets[u] + ds.train_lengths[u]] for u in range(ds.n_users)
    ])
    expected = np.bincount(train_items, minlength=ds.n_items + 1)
    assert np.array_equal(ds.train_count, expected)
    assert np.array_equal(ds.full_count, np.bincount(ds.items, minlength=ds.n_items + 1))
    assert (ds.full_count >= ds.train_count).all() and (ds.full_count > ds.train_count).any()
    n_head = int(np.ceil(0.2 * ds.n_items))
    assert ds.is_head.sum() == n_head
    assert ds.train_count[ds.is_head].min() >= ds.train_count[1:][~ds.is_head[1:]].max()


def test_short_users_are_not_evaluated(tmp_path):
    folder = tmp_path / "cat"
    folder.mkdir()
    rows = ["user_id,item_id,timestamp"]
    rows += [f"a,i{k},{k}" for k in range(4)] + ["b,i0,5", "b,i1,6"]
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    (folder / "items.jsonl").write_text('{"item_id": "i0", "title": "x"}\n')
    summary = prepare(str(folder), tmp_path / "out", min_user=1, min_item=1, progress=False)
    ds = Dataset.load(summary["path"])
    assert ds.evaluable.tolist() == [True, False]
    assert ds.stats["users_not_evaluable"] == 1
    assert ds.stats["split"] == {"train": 4, "valid": 1, "test": 1}
    assert ds.stats["items_without_metadata"] == 3


def test_cli_prints_contract_summary(tmp_path, sample_dir):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "faerec.cli", "prepare", str(sample_dir), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, check=True)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["users"], summary["items"], summary["interactions"]) == (8317, 4344, 58492)
    assert summary["seconds"] > 0
    assert sorted(p.name for p in out.iterdir()) == [
        "interactions.parquet", "items.parquet", "popularity.parquet", "stats.json", "users.parquet"]
