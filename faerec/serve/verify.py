"""A reference scoring of dataset users, written independently of the export path, to check what
``faerec recommend`` wrote (scripts/check_recommendations.py and tests/serve/test_recommend.py).

It builds each user's input the plain way (the last ``max_len`` items of the whole history, left-padded), scores
``user_embedding(input) @ item_table().T`` and applies the evaluator's candidate rule (faerec.eval.ranking
.mask_scores, ``novel``). The export's vectorised path (Recommender: windows of trained items, the scoring
table with candidate items) must give the same lists for users whose history has no candidate items.
"""

from __future__ import annotations

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.eval.ranking import mask_scores


@torch.no_grad()
def reference_top_k(model: torch.nn.Module, dataset: Dataset, user_idx: np.ndarray, k: int,
                    max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(item_idx [n, k], scores [n, k]) of the best ``k`` unseen items for each user in ``user_idx``."""
    rows, cols, inputs = [], [], np.zeros((len(user_idx), max_len), dtype=np.int64)
    for r, u in enumerate(user_idx):  # a reference loop over a sample of users, not a hot path
        seq = dataset.items[dataset.offsets[u]:dataset.offsets[u + 1]]
        window = seq[-max_len:]
        inputs[r, max_len - len(window):] = window
        rows += [r] * len(seq)
        cols += seq.tolist()
    scores = model.user_embedding(torch.from_numpy(inputs)) @ model.item_table().T
    mask_scores(scores, torch.tensor(rows), torch.tensor(cols), "novel")
    values, top = torch.topk(scores, k, dim=1)
    return top.numpy(), values.numpy()
