"""`faerec prepare` candidate-only items and the new-item hold-out, on a real tiny catalogue.

Candidates (catalogue items with text that are not trained) are appended to items.parquet after the trained
items and change nothing the trainer or evaluator reads; the hold-out (--new-items) removes every training and
validation interaction with a seeded share of the k-core's items and keeps their test targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from faerec.cli import main
from faerec.data.dataset import Dataset
from faerec.data.prepare import prepare
from faerec.errors import FaerecError
from faerec.eval.splits import EvalSplit
from faerec.models import ModelConfig
from faerec.runs.config import TrainConfig

TRAINED_FILES = ("interactions.parquet", "users.parquet", "popularity.parquet")
TRAINED_STATS = ("users", "items", "interactions", "split", "head_items", "catalogue_fingerprint",
                 "interactions_fingerprint", "filter_rounds", "users_not_evaluable")


@pytest.fixture(scope="module")
def catalogue(sample_dir: Path, tmp_path_factory) -> Path:
    """The sample's 500 most active users (the 5-core removes most of their items), plus three catalogue
    items nobody interacted with: two with text, one without any."""
    out = tmp_path_factory.mktemp("raw") / "catalogue"
    out.mkdir()
    interactions = pl.read_csv(sample_dir / "interactions.csv.gz")
    users = (interactions.group_by("user_id").len().sort(["len", "user_id"], descending=[True, False])
             .head(500)["user_id"])
    subset = interactions.filter(pl.col("user_id").is_in(users.implode()))
    items = pl.read_ndjson(sample_dir / "items.jsonl.gz").filter(pl.col("item_id").is_in(subset["item_id"].implode()))
    subset.write_csv(out / "interactions.csv")
    lines = [items.write_ndjson().strip(),
             json.dumps({"item_id": "fresh-1", "title": "Digital caliper, stainless steel"}),
             json.dumps({"item_id": "fresh-2", "description": "A lab thermometer", "categories": ["Lab"]}),
             json.dumps({"item_id": "blank", "title": "  ", "categories": []})]
    (out / "items.jsonl").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def prepared(catalogue, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("modes")
    return {mode: Path(prepare(str(catalogue), root / mode, progress=False, candidates=mode)["path"])
            for mode in ("none", "new", "all")}


def test_candidates_follow_the_trained_items_and_change_nothing_else(prepared):
    stats = {m: json.loads((p / "stats.json").read_text()) for m, p in prepared.items()}
    n = stats["none"]["items"]
    for mode, path in prepared.items():
        for name in TRAINED_FILES:
            assert pl.read_parquet(path / name).equals(pl.read_parquet(prepared["none"] / name)), (mode, name)
        assert {k: stats[mode][k] for k in TRAINED_STATS} == {k: stats["none"][k] for k in TRAINED_STATS}
        items = pl.read_parquet(path / "items.parquet").sort("item_idx")
        assert items["item_idx"].to_list() == list(range(1, items.height + 1))
        assert items.height == n + stats[mode]["candidate_items"]
        assert items["candidate"].to_list() == [False] * n + [True] * stats[mode]["candidate_items"]
        assert items.head(n).drop("candidate").equals(
            pl.read_parquet(prepared["none"] / "items.parquet").sort("item_idx").drop("candidate"))
    assert stats["none"]["candidate_items"] == 0
    new = pl.read_parquet(prepared["new"] / "items.parquet").filter("candidate")
    assert new["item_id"].to_list() == ["fresh-1", "fresh-2"]  # never interacted, with text; "blank" has none
    assert stats["new"]["candidates"] == {"mode": "new", "held_out": 0, "never_interacted": 2, "removed_by_kcore": 0}
    removed = stats["all"]["candidates"]["removed_by_kcore"]
    assert removed > 1000 and stats["all"]["candidate_items"] == removed + 2
    assert removed <= stats["all"]["metadata_of_filtered_items"]
    fingerprints = {stats[m]["candidates_fingerprint"] for m in stats}
    assert len(fingerprints) == 3


def test_training_metrics_are_identical_with_and_without_candidates(prepared, tmp_path, one_torch_thread):
    from faerec.train.run import train_run

    cfg = TrainConfig(model=ModelConfig.create(method="base", hidden=16, layers=1), epochs=1, batch_size=128,
                      device="cpu")
    metrics = {mode: train_run(prepared[mode], cfg, tmp_path / mode, progress=False) for mode in ("none", "all")}
    for block in ("test", "valid"):
        assert metrics["all"][block] == metrics["none"][block]
    assert "n_new_item_targets" not in metrics["all"]["test"]


@pytest.fixture(scope="module")
def held_out(catalogue, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("heldout") / "ds"
    summary = prepare(str(catalogue), out, progress=False, new_items=0.1, new_items_seed=7)
    assert summary["dataset_id"] == "catalogue-u5i5-new0.1s7"
    return out


def test_new_items_keep_only_their_test_targets(held_out, prepared):
    stats = json.loads((held_out / "stats.json").read_text())
    info = stats["new_items"]
    kcore_items = json.loads((prepared["none"] / "stats.json").read_text())["items"]
    assert info["held_out_items"] == round(0.1 * kcore_items) and info["seed"] == 7
    n = stats["items"]
    assert n == kcore_items - info["held_out_items"]
    items = pl.read_parquet(held_out / "items.parquet").sort("item_idx")
    assert items.filter("candidate").height == stats["candidate_items"] == info["held_out_items"] + 2
    ds = Dataset.load(held_out)
    assert ds.n_items == n and len(ds.train_count) == n + 1
    position = np.arange(len(ds.items)) - np.repeat(ds.offsets[:-1], ds.lengths)
    last = position == np.repeat(ds.lengths, ds.lengths) - 1
    owner_evaluable = np.repeat(ds.evaluable, ds.lengths)
    new = ds.items > n
    assert new.sum() == info["test_targets"] > 0
    assert (new <= (last & owner_evaluable)).all()  # only as the test target of an evaluable user
    split = EvalSplit.build(ds, "test", 50)
    assert split.n_new_item_targets == info["test_targets"]
    assert len(split) == ds.evaluable.sum() - info["test_targets"] and (split.targets <= n).all()
    assert EvalSplit.build(ds, "valid", 50).n_new_item_targets == 0


def test_the_hold_out_is_seeded(catalogue, held_out, tmp_path):
    same = Path(prepare(str(catalogue), tmp_path / "same", progress=False, new_items=0.1, new_items_seed=7)["path"])
    other = Path(prepare(str(catalogue), tmp_path / "other", progress=False, new_items=0.1, new_items_seed=8)["path"])

    def held(path):
        return set(pl.read_parquet(path / "items.parquet").filter("candidate")["item_id"].to_list())

    assert held(same) == held(held_out) != held(other)
    assert pl.read_parquet(same / "interactions.parquet").equals(pl.read_parquet(held_out / "interactions.parquet"))


def test_cli_flags_and_bad_shares(catalogue, tmp_path, capsys):
    assert main(["prepare", str(catalogue), "--out", str(tmp_path / "cli"), "--quiet", "--candidates", "none",
                 "--new-items", "0.2", "--new-items-seed", "3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["dataset_id"] == "catalogue-u5i5-new0.2s3" and summary["new_items"]["seed"] == 3
    assert summary["candidate_items"] == summary["new_items"]["held_out_items"]  # no other candidates
    with pytest.raises(FaerecError, match=r"--new-items must be a share in \[0, 1\)"):
        prepare(str(catalogue), tmp_path / "bad", progress=False, new_items=1.0)
    with pytest.raises(FaerecError, match="candidates must be one of"):
        prepare(str(catalogue), tmp_path / "bad", progress=False, candidates="some")
