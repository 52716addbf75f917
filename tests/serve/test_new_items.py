"""The new-item protocol end to end: prepare --new-items, train, `faerec evaluate --new-items` ranks the held-out
items (text rows for FAERec, labelled chance-level rows for base), and the normal evaluation counts and skips
those users."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from serve_fixtures import config, embed

from faerec.cli import main
from faerec.data.dataset import Dataset
from faerec.data.prepare import prepare
from faerec.eval.newitems import CHANCE_ROWS, TEXT_ROWS, evaluate_new_items, new_item_users
from faerec.serve.recommend import Recommender
from faerec.train.run import train_run


@pytest.fixture(scope="module")
def held_out(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("newitems")
    dataset = Path(prepare(str(world.catalogue), root / "data", progress=False, new_items=0.15)["path"])
    assert embed(dataset, world.cache)["embedded"] == 0  # the same texts: all from the cache
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {m: train_run(dataset, config(m), root / m, progress=False) for m in ("faerec", "base")}
    finally:
        torch.set_num_threads(threads)
    return dataset, runs


def test_the_normal_evaluation_skips_and_counts_new_item_targets(held_out):
    dataset, runs = held_out
    ds = Dataset.load(dataset)
    n_new = len(new_item_users(ds))
    assert n_new == ds.stats["new_items"]["test_targets"] > 0
    for metrics in runs.values():
        assert metrics["test"]["n_new_item_targets"] == n_new
        assert metrics["test"]["n_targets"]["overall"] == ds.evaluable.sum() - n_new
        assert "n_new_item_targets" not in metrics["valid"]
        written = json.loads((Path(metrics["run_dir"]) / "metrics.json").read_text())
        assert written["test"]["n_new_item_targets"] == n_new


def test_new_item_metrics_text_rows_versus_chance_rows(held_out, capsys):
    dataset, runs = held_out
    faerec = evaluate_new_items(runs["faerec"]["run_dir"])
    base = evaluate_new_items(runs["base"]["run_dir"])
    ds = Dataset.load(dataset)
    for result in (faerec, base):
        assert result["n_new_item_targets"] == len(new_item_users(ds))
        assert result["items_ranked"] == ds.n_items + ds.stats["candidate_items"]
        assert set(result["new_items"]) == {f"{m}@{k}" for m in ("hr", "ndcg") for k in (5, 10, 20)}
        assert 0.0 <= result["new_items"]["ndcg@10"] <= result["new_items"]["hr@10"] <= 1.0
    assert faerec["candidate_rows"] == TEXT_ROWS and faerec["chance_level"] is False
    assert base["candidate_rows"] == CHANCE_ROWS and base["chance_level"] is True
    assert base == {**evaluate_new_items(runs["base"]["run_dir"]), "seconds": base["seconds"]}  # seeded rows
    # FAERec ranks the unseen items from their text, far above a random ranking
    assert faerec["new_items"]["hr@20"] > 2 * faerec["random_ranking"]["hr@20"]

    assert main(["evaluate", runs["faerec"]["run_dir"], "--new-items"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["new_items"] == faerec["new_items"]


def test_recommend_on_a_held_out_dataset_masks_the_held_out_test_items(held_out):
    dataset, runs = held_out
    rec = Recommender.load(runs["faerec"]["run_dir"])
    ds = rec.run.dataset
    users = new_item_users(ds)[:20]
    top = rec.for_users(users, 10)
    for row, user in enumerate(users):
        history = set(ds.items[ds.offsets[user]:ds.offsets[user + 1]].tolist())
        assert not history & set(top.items[row].tolist())  # the held-out test item is history now
    assert (top.items > ds.n_items).any()  # candidates are recommendable
    assert np.isfinite(top.scores).all()
