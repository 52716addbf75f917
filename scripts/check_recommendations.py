"""Check a `faerec recommend` export against its run: every user gets k items, no history item is recommended, every
id is in the catalogue, and for 100 sampled users the lists and scores equal user_embedding @ item_table().T under
the evaluator's mask (faerec.eval.ranking.mask_scores) on the whole history.

    .venv/bin/python scripts/check_recommendations.py RUN_DIR recs.parquet K
"""

import sys

import numpy as np
import polars as pl

from faerec.serve.recommend import Recommender
from faerec.serve.verify import reference_top_k

run_dir, out, K = sys.argv[1], sys.argv[2], int(sys.argv[3])
rec = Recommender.load(run_dir)
run = rec.run
dataset, model, max_len = run.dataset, run.model, run.cfg.model.max_len
recs = pl.read_parquet(out)
users = pl.read_parquet(dataset.path / "users.parquet").sort("user_idx")["user_id"].to_list()
items_df = pl.read_parquet(dataset.path / "items.parquet")
item_ids = np.array([None, *items_df.sort("item_idx")["item_id"]])
catalogue = set(items_df["item_id"].to_list())
print("rows", recs.height, "users", recs["user_id"].n_unique(), "expected", dataset.n_users * K)
print("ids outside the catalogue:", len(set(recs["item_id"].to_list()) - catalogue))
# history exclusion: join against every (user, item) of the whole known history
hist = pl.DataFrame({"user_id": np.repeat(np.array(users), np.diff(dataset.offsets)),
                     "item_id": item_ids[dataset.items]})
print("history items recommended:", recs.join(hist, on=["user_id", "item_id"], how="inner").height)
sampled = np.random.default_rng(0).choice(dataset.n_users, size=100, replace=False)
top, values = reference_top_k(model, dataset, sampled, K, max_len)
bad, worst = 0, 0.0
for r, u in enumerate(sampled):
    mine = recs.filter(pl.col("user_id") == users[u]).sort("rank")
    bad += mine["item_id"].to_list() != item_ids[top[r]].tolist()
    worst = max(worst, float(np.abs(mine["score"].to_numpy() - values[r]).max()))
print(f"sampled users whose top-{K} differs from the evaluator's scoring: {bad} of 100; max score diff {worst:.2e}")
