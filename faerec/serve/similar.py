"""Nearest items by cosine similarity in a run's item table (the table recommendations are scored against,
candidate-only items included where the method can represent them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from faerec.errors import FaerecError
from faerec.serve.recommend import Recommender, UnknownId


class ItemSimilarity:
    """Unit-normalised rows of a Recommender's scoring table, computed once."""

    def __init__(self, recommender: Recommender) -> None:
        self.rec = recommender
        self.unit = F.normalize(recommender.scoring.table.float(), dim=1)  # row 0 (padding) stays zero

    def check_k(self, k: int) -> int:
        most = self.rec.n_scorable - 1
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= most:
            raise FaerecError(f"k must be an integer between 1 and {most} (the other recommendable items), got {k!r}")
        return k

    @torch.no_grad()
    def similar(self, item_id: str, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` items most cosine-similar to ``item_id`` (itself and padding excluded), best first."""
        self.check_k(k)
        idx = int(self.rec.item_indices([str(item_id)])[0])
        if idx > self.rec.n_scorable:
            raise UnknownId(f"item_id {item_id!r} is a candidate-only item, and {self.rec.scoring.note}")
        sims = self.unit @ self.unit[idx]
        sims[0] = float("-inf")
        sims[idx] = float("-inf")
        values, top = torch.topk(sims, k)
        cat = self.rec.catalogue
        return [{"item_id": cat.item_ids[i], "title": cat.titles[i], "score": float(v), "rank": r}
                for r, (i, v) in enumerate(zip(top.tolist(), values.tolist(), strict=True), start=1)]


def similar_items(run_dir: str | Path, item_id: str, k: int = 10, dataset_dir: str | Path | None = None,
                  device: str | None = None) -> dict[str, Any]:
    """The one-line summary of ``faerec similar``: the query item and its nearest items."""
    rec = Recommender.load(run_dir, dataset_dir, device)
    items = ItemSimilarity(rec).similar(item_id, k)
    idx = rec.catalogue.item_index[str(item_id)]
    return {"run_dir": str(rec.run.run_dir), "item_id": str(item_id), "title": rec.catalogue.titles[idx],
            "candidate": idx > rec.scoring.n_trained, "k": k, "measure": "cosine", "similar": items}
