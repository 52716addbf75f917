"""Uniform negative sampling that never returns an item of the user's training sequence (docs/PROTOCOL.md).

Only the *training* part is excluded: excluding the future validation/test items too, as the official code
does, tells the model something about them and leaks. Membership is tested for a whole batch at once against
one sorted array of keys user * (n_items + 1) + item; only the collisions are drawn again, so the expected
number of rounds is tiny (a user's history is a small share of the catalogue).
"""

from __future__ import annotations

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.data.sequences import position_in_user, user_of_entry
from faerec.errors import FaerecError

MAX_ROUNDS = 1000  # a safety net only: each round redraws just the collisions


class NegativeSampler:
    def __init__(self, dataset: Dataset, generator: torch.Generator) -> None:
        self.n_items = dataset.n_items
        self.generator = generator
        owner = user_of_entry(dataset)
        in_train = position_in_user(dataset) < dataset.train_lengths[owner]
        keys = np.unique(owner[in_train] * (self.n_items + 1) + dataset.items[in_train])
        distinct_per_user = np.bincount(keys // (self.n_items + 1), minlength=dataset.n_users)
        full = np.flatnonzero(distinct_per_user >= self.n_items)
        if len(full):
            raise FaerecError(
                f"user {int(full[0])} has interacted with every item, so no negative can be sampled",
                path=dataset.path,
            )
        self.keys = torch.from_numpy(keys)

    def is_training_item(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Elementwise: is ``items[i]`` in the training sequence of ``users[i]``? (same shapes, int64)"""
        query = users * (self.n_items + 1) + items
        where = torch.searchsorted(self.keys, query).clamp_(max=max(len(self.keys) - 1, 0))
        if len(self.keys) == 0:
            return torch.zeros_like(query, dtype=torch.bool)
        return self.keys[where] == query

    def sample(self, users: torch.Tensor, needed: torch.Tensor) -> torch.Tensor:
        """Negatives [B, L] for example rows of ``users`` [B]; 0 where ``needed`` [B, L] is False."""
        shape = needed.shape
        owners = users[:, None].expand(shape)
        negatives = torch.randint(1, self.n_items + 1, shape, generator=self.generator)
        redraw = needed & self.is_training_item(owners, negatives)
        for _ in range(MAX_ROUNDS):
            count = int(redraw.sum())
            if count == 0:
                break
            fresh = torch.randint(1, self.n_items + 1, (count,), generator=self.generator)
            negatives[redraw] = fresh
            still = self.is_training_item(owners[redraw], fresh)
            redraw[redraw.clone()] = still
        else:  # pragma: no cover - needs a user owning nearly every item
            raise FaerecError("negative sampling did not converge: a user owns almost the whole catalogue")
        return negatives.masked_fill_(~needed, 0)
