"""`faerec recommend` and `faerec similar` on a real tiny run: history excluded by the evaluator's rule, the
evaluator's scores, original ids, the --user/--users/--include-history flags, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from faerec.cli import main
from faerec.data.dataset import Dataset
from faerec.serve.recommend import export_recommendations
from faerec.serve.similar import similar_items
from faerec.serve.verify import reference_top_k

K = 10


def histories(dataset: Dataset) -> dict[str, set[str]]:
    """user_id -> original ids of every item in the user's whole known history."""
    users = pl.read_parquet(dataset.path / "users.parquet").sort("user_idx")["user_id"].to_list()
    items = pl.read_parquet(dataset.path / "items.parquet").sort("item_idx")["item_id"].to_list()
    return {users[u]: {items[i - 1] for i in dataset.items[dataset.offsets[u]:dataset.offsets[u + 1]]}
            for u in range(dataset.n_users)}


@pytest.fixture(scope="module")
def export(world, faerec_recommender, tmp_path_factory):
    out = tmp_path_factory.mktemp("recs") / "recs.parquet"
    summary = export_recommendations(world.runs["faerec"], out, K, progress=False, recommender=faerec_recommender)
    return summary, pl.read_parquet(out)


def test_every_user_gets_k_catalogue_items_ranked_best_first(world, export):
    summary, recs = export
    dataset = Dataset.load(world.dataset)
    assert recs.schema == {"user_id": pl.Utf8, "item_id": pl.Utf8, "score": pl.Float32, "rank": pl.Int32}
    assert summary["users"] == dataset.n_users and summary["rows"] == recs.height == dataset.n_users * K
    assert recs["user_id"].unique().len() == dataset.n_users
    catalogue = set(pl.read_parquet(world.dataset / "items.parquet")["item_id"].to_list())
    assert set(recs["item_id"].to_list()) <= catalogue
    per_user = recs.group_by("user_id", maintain_order=True).agg("rank", "score")
    assert all(r == list(range(1, K + 1)) for r in per_user["rank"].to_list())
    assert all(s == sorted(s, reverse=True) for s in per_user["score"].to_list())


def test_history_is_excluded(world, export):
    _, recs = export
    seen = histories(Dataset.load(world.dataset))
    leaked = [(u, i) for u, i in recs.select("user_id", "item_id").iter_rows() if i in seen[u]]
    assert leaked == []


def test_ranks_match_the_evaluators_scores(world, export, faerec_recommender):
    """user_embedding @ item_table().T with the evaluator's mask (mask_scores, novel), on the whole history."""
    _, recs = export
    run = faerec_recommender.run
    dataset, model, max_len = run.dataset, run.model, run.cfg.model.max_len
    users = pl.read_parquet(dataset.path / "users.parquet").sort("user_idx")["user_id"].to_list()
    item_ids = np.array([None, *pl.read_parquet(dataset.path / "items.parquet").sort("item_idx")["item_id"]])
    sampled = np.random.default_rng(0).choice(dataset.n_users, size=12, replace=False)
    top, values = reference_top_k(model, dataset, sampled, K, max_len)
    for r, u in enumerate(sampled):
        mine = recs.filter(pl.col("user_id") == users[u]).sort("rank")
        assert mine["item_id"].to_list() == item_ids[top[r]].tolist()
        np.testing.assert_allclose(mine["score"].to_numpy(), values[r], rtol=1e-5, atol=1e-5)


def test_include_history_can_return_history_items(world, faerec_recommender):
    dataset = faerec_recommender.run.dataset
    everything = faerec_recommender.n_scorable
    user = np.array([0])
    with_history = faerec_recommender.for_users(user, everything, include_history=True)
    assert set(with_history.items[0].tolist()) == set(range(1, everything + 1))  # only padding is excluded
    history = set(dataset.items[dataset.offsets[0]:dataset.offsets[1]].tolist())
    novel = faerec_recommender.for_users(user, everything)
    kept = novel.items[0][novel.scores[0] > float("-inf")]
    assert len(kept) == everything - len(history) and not set(kept.tolist()) & history
    assert faerec_recommender.rows(novel)["item_id"].shape == (everything - len(history),)  # masked slots dropped


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_user_users_and_include_history(world, tmp_path, capsys):
    users = pl.read_parquet(world.dataset / "users.parquet")["user_id"].to_list()
    seen = histories(Dataset.load(world.dataset))
    out = tmp_path / "one.parquet"
    assert main(["recommend", str(world.runs["faerec"]), "--k", "5", "--out", str(out), "--user", users[3],
                 "--include-history", "--no-progress"]) == 0
    summary = _last_json(capsys)
    assert summary["users"] == 1 and summary["rows"] == 5 and summary["protocol"] == "repeat"
    assert pl.read_parquet(out)["user_id"].unique().to_list() == [users[3]]

    listed = tmp_path / "users.txt"
    listed.write_text("\n".join(users[10:14]) + "\n")
    out = tmp_path / "four.parquet"
    assert main(["recommend", str(world.runs["base"]), "-k", "3", "--out", str(out), "--users", str(listed),
                 "--batch-size", "3", "--no-progress"]) == 0
    recs = pl.read_parquet(out)
    assert recs["user_id"].unique(maintain_order=True).to_list() == users[10:14] and recs.height == 12
    assert not [(u, i) for u, i in recs.select("user_id", "item_id").iter_rows() if i in seen[u]]


@pytest.mark.parametrize("args, message", [
    (["--user", "nobody"], "unknown user_id 'nobody'"),
    (["--k", "100000"], "k must be an integer between 1 and"),
])
def test_cli_errors_name_the_problem(world, tmp_path, capsys, args, message):
    out = tmp_path / "never.parquet"
    assert main(["recommend", str(world.runs["faerec"]), "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".never*"))  # nothing half-written left behind


def test_similar_items(world, faerec_recommender):
    items = pl.read_parquet(world.dataset / "items.parquet")
    query = items["item_id"][0]
    result = similar_items(world.runs["faerec"], query, 5)
    similar = result["similar"]
    assert [s["rank"] for s in similar] == [1, 2, 3, 4, 5] and query not in [s["item_id"] for s in similar]
    scores = [s["score"] for s in similar]
    assert scores == sorted(scores, reverse=True) and all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in scores)
    table = torch.nn.functional.normalize(faerec_recommender.scoring.table, dim=1)
    best = int(torch.topk(table[1:] @ table[1], 2).indices[1]) + 1  # row 1 itself is the best
    assert similar[0]["item_id"] == items.sort("item_idx")["item_id"][best - 1]
