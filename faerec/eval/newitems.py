"""The new-item protocol's evaluation: how well a run ranks items it never saw (``faerec evaluate --new-items``).

``faerec prepare SOURCE --new-items SHARE`` holds out a seeded share of the k-core's items: every training and
validation interaction with them is removed, their test-target interactions stay, and they become
candidate-only items (item_idx > n_items, no ID row, never a negative, never in an alignment loss). The
normal evaluation leaves those test users out (``n_new_item_targets`` in metrics.json); here exactly those
users are ranked, on their usual test input (training part + validation item), over the trained AND the
candidate items, with the ``novel`` history mask of faerec.eval.ranking.

Candidate rows: a method registered with ``scores_new_items`` represents them from their text
(``candidate_table``, faerec.runs.modelling.candidate_item_table). Any other method has nothing for an unseen
item but what an untrained ID row would be: rows drawn from its initial distribution N(0, init_std²), seeded,
which is chance level; the result says so (``candidate_rows``) and gives the expected metrics of a uniformly
random ranking for comparison.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.data.sequences import left_padded_windows
from faerec.errors import FaerecError
from faerec.eval.metrics import KS, hit_and_ndcg
from faerec.eval.ranking import rank_targets
from faerec.runs.modelling import candidate_count, candidate_item_table, load_trained_run

TEXT_ROWS = "text (the method's candidate_table)"
CHANCE_ROWS = ("untrained ID rows drawn from N(0, init_std^2), the method's initialisation: no learned "
               "representation (about chance level; compare random_ranking)")


def history_windows(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_items: int,
                    max_len: int) -> np.ndarray:
    """[U, max_len] left-padded model inputs from items[starts[u]:ends[u]], leaving out the items the model
    has no row for (item_idx > n_items: candidate-only items); the last ``max_len`` of what is left."""
    keep = items <= n_items
    before = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(keep, out=before[1:])  # before[i] = kept entries in items[:i]
    return left_padded_windows(items[keep], before[starts], before[ends], max_len)


def history_pairs(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, flat index) of every entry of the ranges items[starts[r]:ends[r]], row by row."""
    lengths = (ends - starts).astype(np.int64)
    rows = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    first = np.cumsum(lengths) - lengths
    index = np.repeat(starts.astype(np.int64), lengths) + np.arange(lengths.sum(), dtype=np.int64) - np.repeat(
        first, lengths)
    return rows, index


def untrained_rows(n: int, width: int, std: float, seed: int, device: torch.device) -> torch.Tensor:
    """[n, width] rows of N(0, std^2) from a seeded generator: what an ID row nobody trained would hold."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(n, width, generator=generator) * std).to(device)


def new_item_users(dataset: Dataset) -> np.ndarray:
    """Evaluable users whose test target is a held-out item (item_idx > n_items)."""
    users = np.flatnonzero(dataset.evaluable)
    targets = dataset.items[dataset.offsets[users + 1] - 1]
    return users[targets > dataset.n_items]


@torch.no_grad()
def evaluate_new_items(run_dir: str | Path, dataset_dir: str | Path | None = None, device: str | None = None,
                       batch_size: int = 512, seed: int | None = None) -> dict[str, Any]:
    """HR/NDCG@5, 10, 20 of the test users whose target is a held-out item, ranked over trained + candidate
    items (novel mask). ``seed`` (default: the run's) draws the chance-level rows of methods without text."""
    started = time.perf_counter()
    run = load_trained_run(run_dir, dataset_dir, device)
    dataset, cfg, model = run.dataset, run.cfg, run.model
    n_candidates = candidate_count(dataset)
    users = new_item_users(dataset)
    if n_candidates == 0 or len(users) == 0:
        raise FaerecError("the dataset has no test targets on held-out items; prepare it with "
                          "`faerec prepare SOURCE --new-items SHARE` and train on that", path=dataset.path)
    table = model.item_table().float()
    candidates = candidate_item_table(model, dataset, cfg)
    label = TEXT_ROWS
    if candidates is None:
        candidates = untrained_rows(n_candidates, table.shape[1], cfg.model.init_std,
                                    cfg.seed if seed is None else seed, run.device)
        label = CHANCE_ROWS
    table = torch.cat([table, candidates])

    starts = dataset.offsets[users]
    ends = dataset.offsets[users + 1] - 1  # the test input: everything before the test target
    inputs = torch.from_numpy(history_windows(dataset.items, starts, ends, dataset.n_items, cfg.model.max_len))
    targets = torch.from_numpy(dataset.items[ends].astype(np.int64))
    rows, index = history_pairs(starts, ends)
    hist_items = torch.from_numpy(dataset.items[index].astype(np.int64))
    hist_rows = torch.from_numpy(rows)
    hist_ptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=hist_ptr[1:])
    top_k = max(KS)
    ranks = []
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        h0, h1 = int(hist_ptr[start]), int(hist_ptr[stop])
        scores = model.user_embedding(inputs[start:stop].to(run.device)).float() @ table.T
        rank, _ = rank_targets(scores, targets[start:stop].to(run.device),
                               (hist_rows[h0:h1] - start).to(run.device), hist_items[h0:h1].to(run.device),
                               top_k, "novel")
        ranks.append(rank.cpu())
    ranks_np = torch.cat(ranks).numpy()

    # expected metrics of a uniformly random ranking over each user's candidate set (everything unmasked)
    keys = np.unique(rows * (dataset.n_items + n_candidates + 1) + dataset.items[index])
    distinct = np.bincount(keys // (dataset.n_items + n_candidates + 1), minlength=len(users))
    pool = (dataset.n_items + n_candidates - distinct).astype(np.float64)
    random = {f"hr@{k}": float(np.mean(np.minimum(k, pool) / pool)) for k in KS}
    return {
        "run_dir": str(run.run_dir), "dataset": dataset.name, "backbone": cfg.model.backbone,
        "method": cfg.model.method, "best_epoch": run.best_epoch, "protocol": "novel",
        "n_new_item_targets": int(len(users)), "trained_items": dataset.n_items,
        "candidate_items": n_candidates, "items_ranked": dataset.n_items + n_candidates,
        "candidate_rows": label, "chance_level": label == CHANCE_ROWS,
        "new_items": hit_and_ndcg(ranks_np, KS), "random_ranking": random,
        "seconds": round(time.perf_counter() - started, 3),
    }
