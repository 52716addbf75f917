"""What a run can recommend: the trained items, plus the candidate-only items when its method can represent
an item from its text (``scores_new_items``), and the catalogue's original ids for every item_idx.

Candidate-only items (faerec.data.prepare) are rows n_items + 1 .. n_items + C of items.parquet and of the
embedding tables. A run trained before they were added scores them without retraining: FAERec and LLM-ESR
build their rows with ``candidate_table`` from the items' LLM embeddings and PCA rows. For any other method
they are not recommendable (their columns are simply absent from the scoring table), and the summaries say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from faerec.data import folder
from faerec.data.dataset import Dataset
from faerec.errors import FaerecError
from faerec.runs.config import TrainConfig
from faerec.runs.modelling import candidate_count, candidate_item_table


@dataclass
class Catalogue:
    """Original ids by item_idx (index 0 = padding, None) and the reverse map; users likewise by user_idx."""

    item_ids: np.ndarray  # object [n_items + C + 1]
    titles: np.ndarray  # object [n_items + C + 1], None where missing
    item_index: dict[str, int]
    user_ids: np.ndarray  # object [n_users]
    user_index: dict[str, int]
    n_trained: int
    n_candidates: int

    @classmethod
    def read(cls, dataset: Dataset) -> Catalogue:
        path = Path(dataset.path)
        items = pl.read_parquet(path / folder.ITEMS, columns=["item_idx", "item_id", "title"]).sort("item_idx")
        n_all = dataset.n_items + candidate_count(dataset)
        if items.height != n_all or items["item_idx"].to_list() != list(range(1, n_all + 1)):
            raise FaerecError(f"items.parquet must hold item_idx 1..{n_all} (the dataset's {dataset.n_items} items "
                              f"and {candidate_count(dataset)} candidates); re-run `faerec prepare`", path=path)
        item_ids = np.empty(n_all + 1, dtype=object)
        item_ids[1:] = items["item_id"].cast(pl.Utf8).to_numpy()
        titles = np.empty(n_all + 1, dtype=object)
        titles[1:] = items["title"].to_numpy()
        users = pl.read_parquet(path / folder.USERS, columns=["user_idx", "user_id"]).sort("user_idx")
        if users.height != dataset.n_users:
            raise FaerecError(f"users.parquet holds {users.height} users, stats.json {dataset.n_users}", path=path)
        user_ids = users["user_id"].cast(pl.Utf8).to_numpy().astype(object)
        return cls(item_ids, titles, {item_id: i for i, item_id in enumerate(item_ids[1:], start=1)}, user_ids,
                   {user_id: u for u, user_id in enumerate(user_ids)}, dataset.n_items, candidate_count(dataset))


@dataclass
class ScoringTable:
    """The item table recommendations are scored against: row i is item_idx i (row 0 padding), the trained
    items first, then the candidate-only items if the method can represent them."""

    table: torch.Tensor  # float32 [n_items + 1 (+ C), D]
    n_trained: int
    n_candidates: int
    candidates_scored: bool
    note: str | None  # why the candidates are not recommendable, if they are not

    @property
    def n_scorable(self) -> int:
        """Real items that can be recommended (padding excluded)."""
        return self.table.shape[0] - 1


@torch.no_grad()
def scoring_table(model: torch.nn.Module, dataset: Dataset, cfg: TrainConfig) -> ScoringTable:
    """``model.item_table()`` (computed once, float32) with the candidates' rows appended where possible."""
    table = model.item_table().float()
    n_candidates = candidate_count(dataset)
    candidates = candidate_item_table(model, dataset, cfg)
    note = None
    if candidates is not None:
        table = torch.cat([table, candidates])
    elif n_candidates:
        note = (f"method {cfg.model.method!r} cannot represent an item from its text (scores_new_items is off): "
                f"the {n_candidates} candidate-only items are not recommendable")
    return ScoringTable(table.contiguous(), dataset.n_items, n_candidates, candidates is not None, note)
