"""`faerec api` through a real HTTP client against a uvicorn server on 127.0.0.1 (a free port, in a thread):
answers equal `faerec recommend`'s, every bad request gets a 4xx JSON error naming the problem (and is
logged), and the server keeps answering afterwards."""

from __future__ import annotations

import logging

import httpx
import polars as pl
import pytest

from faerec.serve.api import serve_in_thread
from faerec.serve.recommend import export_recommendations

K = 7


@pytest.fixture(scope="module")
def client(faerec_recommender):
    with serve_in_thread(faerec_recommender) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert url.startswith("http://127.0.0.1:")
        yield http


@pytest.fixture(scope="module")
def users(world) -> list[str]:
    return pl.read_parquet(world.dataset / "users.parquet").sort("user_idx")["user_id"].to_list()


def test_health(client, faerec_recommender):
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["method"] == "faerec" and body["items_scored"] == faerec_recommender.n_scorable


def test_get_recommend_equals_faerec_recommend(client, world, users, tmp_path, faerec_recommender):
    picked = users[:3] + users[-2:]
    every = tmp_path / "all.parquet"
    export_recommendations(world.runs["faerec"], every, K, progress=False, recommender=faerec_recommender)
    every = pl.read_parquet(every)
    for user in picked:
        one = tmp_path / f"{user}.parquet"
        export_recommendations(world.runs["faerec"], one, K, users=[user], progress=False,
                               recommender=faerec_recommender)
        expected = pl.read_parquet(one).sort("rank")
        answer = client.get("/recommend", params={"user_id": user, "k": K})
        assert answer.status_code == 200, answer.text
        got = answer.json()["items"]
        assert [i["item_id"] for i in got] == expected["item_id"].to_list()
        assert [i["rank"] for i in got] == expected["rank"].to_list() == list(range(1, K + 1))
        assert [i["score"] for i in got] == expected["score"].to_list()  # float32 values, exactly
        batch = every.filter(pl.col("user_id") == user).sort("rank")  # the same user inside a full export
        assert batch["item_id"].to_list() == expected["item_id"].to_list()


def test_post_recommend_for_a_history(client, world, users):
    dataset = world.dataset
    items = pl.read_parquet(dataset / "items.parquet").select("item_idx", "item_id")
    user_idx = 5
    history = (pl.read_parquet(dataset / "interactions.parquet").filter(pl.col("user_idx") == user_idx)
               .join(items, on="item_idx", how="left")["item_id"].to_list())  # in time order
    posted = client.post("/recommend", json={"history": history, "k": K})
    assert posted.status_code == 200, posted.text
    known = client.get("/recommend", params={"user_id": users[user_idx], "k": K}).json()["items"]
    got = posted.json()["items"]
    assert [i["item_id"] for i in got] == [i["item_id"] for i in known]  # same history, same answer
    assert not set(history) & {i["item_id"] for i in got}  # the history is excluded


def test_similar(client, world):
    item = pl.read_parquet(world.dataset / "items.parquet")["item_id"][3]
    answer = client.get("/similar", params={"item_id": item, "k": 4})
    assert answer.status_code == 200
    similar = answer.json()["items"]
    assert len(similar) == 4 and item not in [s["item_id"] for s in similar]


def _bad_requests(users, n_items):
    return [
        ("get", "/recommend", {"params": {"user_id": "no-such-user"}}, 404, "unknown user_id 'no-such-user'"),
        ("get", "/similar", {"params": {"item_id": "no-such-item"}}, 404, "unknown item_id 'no-such-item'"),
        ("post", "/recommend", {"json": {"history": ["no-such-item"]}}, 404, "unknown item_id 'no-such-item'"),
        ("get", "/recommend", {"params": {"user_id": users[0], "k": 0}}, 422, "k must be an integer between 1 and"),
        ("get", "/recommend", {"params": {"user_id": users[0], "k": 10**6}}, 422, f"between 1 and {n_items}"),
        ("get", "/recommend", {"params": {"user_id": users[0], "k": "ten"}}, 422, "parameter 'k'"),
        ("get", "/similar", {"params": {"item_id": "x", "k": -1}}, 422, "k must be an integer"),
        ("get", "/recommend", {}, 422, "parameter 'user_id'"),
        ("post", "/recommend", {"content": b'{"history": ["a", ', "headers": {"content-type": "application/json"}},
         400, "malformed JSON"),
        ("post", "/recommend", {"json": {"history": []}}, 422, "'history' is empty"),
        ("post", "/recommend", {"json": {"history": "i1"}}, 422, "'history' must be a list"),
        ("post", "/recommend", {"json": ["i1"]}, 422, "must be a JSON object"),
        ("post", "/recommend", {"json": {"history": ["i1"], "k": "5"}}, 422, "k must be an integer"),
        ("post", "/recommend", {"json": {"history": ["i1"], "n": 5}}, 422, "unknown field(s) ['n']"),
        ("get", "/nowhere", {}, 404, "Not Found"),
    ]


def test_bad_requests_get_json_errors_and_the_server_stays_up(client, users, faerec_recommender, caplog):
    caplog.set_level(logging.WARNING, logger="faerec.serve.api")
    cases = _bad_requests(users, faerec_recommender.n_scorable)
    for method, path, kwargs, status, message in cases:
        answer = getattr(client, method)(path, **kwargs)
        assert answer.status_code == status, (path, kwargs, answer.text)
        body = answer.json()
        assert body["status"] == status and message in body["error"], (path, kwargs, body)
    assert client.get("/health").status_code == 200
    assert client.get("/recommend", params={"user_id": users[1], "k": 3}).status_code == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "faerec.serve.api"]
    assert len(logged) >= len(cases) and any("unknown user_id 'no-such-user'" in m for m in logged)
