"""The loop end to end: a run trained before new catalogue items existed recommends them after `faerec prepare`
+ `faerec embed`, with no retraining: only the new items are embedded, the run folder is untouched, its
metrics are unchanged, and the new items reach the users whose history holds their near-duplicates."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from serve_fixtures import embed

from faerec.data.prepare import prepare
from faerec.eval.run import evaluate_run
from faerec.serve.recommend import Recommender, export_recommendations
from faerec.serve.similar import ItemSimilarity, similar_items

N_NEW = 20
K = 10


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def loop(world, tmp_path_factory):
    """A copy of the world (dataset, runs, catalogue) as if trained here, then 20 new near-duplicate items."""
    root = tmp_path_factory.mktemp("loop")
    catalogue = Path(shutil.copytree(world.catalogue, root / "catalogue"))
    dataset = Path(shutil.copytree(world.dataset, root / "data"))
    runs = {}
    for method, run in world.runs.items():
        runs[method] = Path(shutil.copytree(run, root / run.name))
        config = json.loads((runs[method] / "config.json").read_text())
        config["dataset_dir"] = str(dataset)
        (runs[method] / "config.json").write_text(json.dumps(config))
    before = {m: snapshot(r) for m, r in runs.items()}

    # new items: near-duplicates (same text, "New 2026 model: " before the title) of the 20 most popular items
    pop = pl.read_parquet(dataset / "popularity.parquet").sort(["train_count", "item_idx"], descending=[True, False])
    trained = pl.read_parquet(dataset / "items.parquet")
    originals = trained.filter(pl.col("item_idx").is_in(pop["item_idx"].head(N_NEW).implode()))["item_id"]
    items = pl.read_ndjson(catalogue / "items.jsonl")
    new = items.filter(pl.col("item_id").is_in(originals.implode())).with_columns(
        ("new-" + pl.col("item_id")).alias("item_id"), ("New 2026 model: " + pl.col("title")).alias("title"))
    pl.concat([items, new]).write_ndjson(catalogue / "items.jsonl")

    prepared = prepare(str(catalogue), dataset, progress=False)
    embedded = embed(dataset, world.cache)
    return {"root": root, "dataset": dataset, "runs": runs, "before": before, "originals": originals.to_list(),
            "new_ids": new["item_id"].to_list(),
            "prepared": prepared, "embedded": embedded, "world": world}


def test_prepare_appends_the_new_items_as_candidates_and_embed_encodes_only_them(loop, world):
    old_stats = json.loads((world.dataset / "stats.json").read_text())
    prepared, embedded = loop["prepared"], loop["embedded"]
    assert prepared["candidate_items"] == N_NEW and prepared["items"] == old_stats["items"]
    assert prepared["fingerprint"] == old_stats["catalogue_fingerprint"]  # the trained catalogue is unchanged
    items = pl.read_parquet(loop["dataset"] / "items.parquet").sort("item_idx")
    assert items["candidate"].to_list() == [False] * old_stats["items"] + [True] * N_NEW
    assert items.filter("candidate")["item_id"].to_list() == loop["new_ids"]  # in the catalogue's order
    for name in ("interactions.parquet", "users.parquet", "popularity.parquet"):
        assert pl.read_parquet(loop["dataset"] / name).equals(pl.read_parquet(world.dataset / name))
    assert embedded["embedded"] == N_NEW and embedded["candidates_embedded"] == N_NEW
    assert embedded["cached"] == old_stats["items"] and embedded["items"] == old_stats["items"] + N_NEW


def test_the_old_run_recommends_the_new_items_without_retraining(loop):
    run = loop["runs"]["faerec"]
    out = loop["root"] / "recs.parquet"
    summary = export_recommendations(run, out, K, progress=False)
    assert summary["candidates_recommendable"] is True and summary["candidate_items"] == N_NEW
    assert summary["items_scored"] == summary["trained_items"] + N_NEW
    recs = pl.read_parquet(out)
    dataset = loop["dataset"]
    users = pl.read_parquet(dataset / "users.parquet")
    items = pl.read_parquet(dataset / "items.parquet").select("item_idx", "item_id")
    history = (pl.read_parquet(dataset / "interactions.parquet").join(users, on="user_idx").join(items, on="item_idx")
               .group_by("user_id").agg(pl.col("item_id").unique()))
    pairs = history.explode("item_id").filter(pl.col("item_id").is_in(loop["originals"])).with_columns(
        ("new-" + pl.col("item_id")).alias("twin"))
    got = pairs.join(recs, left_on=["user_id", "twin"], right_on=["user_id", "item_id"], how="left")
    hit = got["rank"].is_not_null().mean()
    # a new item reaches the users who have its near-duplicate in their history ...
    assert hit >= 0.1, hit
    # ... several times more often than the users who do not (a 1-epoch model: the lift is the signal)
    others = recs.filter(pl.col("item_id").str.starts_with("new-")).join(
        pairs.select("user_id", pl.col("twin").alias("item_id")), on=["user_id", "item_id"], how="anti")
    other_rate = others.height / (users.height * N_NEW - pairs.height)
    assert hit > 3 * other_rate, (hit, other_rate)
    assert snapshot(run) == loop["before"]["faerec"]  # nothing retrained, nothing written into the run


def test_the_candidate_rows_sit_next_to_their_originals(loop):
    assert similar_items(loop["runs"]["faerec"], f"new-{loop['originals'][0]}", 3)["candidate"] is True
    similarity = ItemSimilarity(Recommender.load(loop["runs"]["faerec"]))
    near = 0
    for original in loop["originals"]:
        trained = [s["item_id"] for s in similarity.similar(f"new-{original}", 30)
                   if not s["item_id"].startswith("new-")]
        near += original in trained[:5]
    assert near >= 0.6 * N_NEW, near  # its original is among the 5 nearest of ~140 trained items


def test_a_method_without_text_rows_excludes_the_candidates_and_says_so(loop):
    out = loop["root"] / "base.parquet"
    summary = export_recommendations(loop["runs"]["base"], out, K, progress=False)
    assert summary["candidates_recommendable"] is False and "not recommendable" in summary["note"]
    assert summary["items_scored"] == summary["trained_items"]
    assert not pl.read_parquet(out)["item_id"].str.starts_with("new-").any()
    assert snapshot(loop["runs"]["base"]) == loop["before"]["base"]


def test_the_old_runs_metrics_are_unchanged_on_the_grown_catalogue(loop):
    for method, run in loop["runs"].items():
        recorded = json.loads((run / "metrics.json").read_text())
        again = evaluate_run(run, out=loop["root"] / f"metrics-{method}.json")
        assert again["test"] == recorded["test"] and again["valid"] == recorded["valid"], method
