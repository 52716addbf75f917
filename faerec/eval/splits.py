"""Validation and test inputs, targets and histories for every evaluable user, built once, vectorised.

Leave-one-out (docs/PROTOCOL.md): for a user with n >= 3 items, the validation ranking sees the first n - 2 items
(the training part) and predicts item n - 1; the test ranking sees the first n - 1 items (train + validation)
and predicts item n. The history that is masked out of the ranking is exactly what the model saw as input
history (the whole prefix, not only the last ``max_len`` items). A row's target is a *repeat target* when it
also occurs in that history; ``repeats`` flags those rows (they are unreachable under the ``novel`` protocol).
A user whose target is not a trained item (item_idx > n_items: an item held out by the new-item protocol of
``faerec prepare --new-items``) cannot be ranked by the trained model and is left out of the split, counted in
``n_new_item_targets`` (faerec.eval.newitems ranks those users).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.data.sequences import left_padded_windows, position_in_user, user_of_entry

SPLITS = ("valid", "test")


@dataclass
class EvalSplit:
    """Rows are evaluable users ordered by (input window length, user), so a batch of consecutive rows has
    similar lengths and a model that skips padding (faerec.models.layers.SeqLayout) does little wasted work.
    Row r belongs to user ``users[r]``; its history is hist_items[hist_ptr[r]:hist_ptr[r + 1]]."""

    name: str
    users: np.ndarray  # int64 [U]
    inputs: torch.Tensor  # int64 [U, L]
    targets: torch.Tensor  # int64 [U]
    hist_items: torch.Tensor  # int64 [H]
    hist_rows: torch.Tensor  # int64 [H], row of each history entry
    hist_ptr: np.ndarray  # int64 [U + 1]
    repeats: np.ndarray  # bool [U], the target occurs in the row's input history
    n_new_item_targets: int = 0  # evaluable users left out: their target is an item no model was trained on

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def build(cls, dataset: Dataset, name: str, max_len: int) -> EvalSplit:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        # history length per user: the training part for "valid", training + validation item for "test"
        hist_len = dataset.train_lengths + (1 if name == "test" else 0)
        candidates = np.flatnonzero(dataset.evaluable)
        # new-item protocol: a target beyond the trained items has no row in the model's item table
        new_item = dataset.items[dataset.offsets[candidates] + hist_len[candidates]] > dataset.n_items
        candidates = candidates[~new_item]
        window = np.minimum(hist_len[candidates], max_len)
        users = candidates[np.lexsort((candidates, window))]
        starts = dataset.offsets[:-1]
        inputs = left_padded_windows(dataset.items, starts[users], starts[users] + hist_len[users], max_len)
        targets = dataset.items[starts[users] + hist_len[users]]

        row_of_user = np.full(dataset.n_users, -1, dtype=np.int64)
        row_of_user[users] = np.arange(len(users))
        owner = user_of_entry(dataset)
        in_history = np.flatnonzero((row_of_user[owner] >= 0) & (position_in_user(dataset) < hist_len[owner]))
        hist_rows = row_of_user[owner[in_history]]
        by_row = np.argsort(hist_rows, kind="stable")  # rows are not in user order: regroup the entries
        hist_ptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(hist_len[users], out=hist_ptr[1:])
        hist_items = dataset.items[in_history[by_row]].astype(np.int64)
        hist_rows = hist_rows[by_row]
        repeats = np.zeros(len(users), dtype=bool)
        repeats[hist_rows[hist_items == targets[hist_rows]]] = True
        return cls(
            name=name,
            users=users,
            inputs=torch.from_numpy(inputs),
            targets=torch.from_numpy(targets.astype(np.int64)),
            hist_items=torch.from_numpy(hist_items),
            hist_rows=torch.from_numpy(hist_rows),
            hist_ptr=hist_ptr,
            repeats=repeats,
            n_new_item_targets=int(new_item.sum()),
        )
