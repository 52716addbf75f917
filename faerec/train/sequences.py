"""Pre-tensorised sequences: every user's window is cut from the flat item array in one vectorised step.

The authors' Dataset builds each sample in Python per epoch; here all windows are built once at start-up and a
batch is an index gather. Windows are LEFT-padded with item 0 (faerec.models.interface): column -1 is the most
recent item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faerec.data.dataset import Dataset


def left_padded_windows(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_len: int) -> np.ndarray:
    """Row i holds items[max(starts[i], ends[i] - max_len) : ends[i]], right-aligned, zeros on the left."""
    index = ends[:, None] - max_len + np.arange(max_len)[None, :]
    inside = index >= starts[:, None]
    if len(items) == 0:
        return np.zeros(index.shape, dtype=np.int64)
    return np.where(inside, items[np.clip(index, 0, None)], 0).astype(np.int64)


def position_in_user(dataset: Dataset) -> np.ndarray:
    """For each entry of the flat item array, its 0-based position inside its user's sequence."""
    return np.arange(len(dataset.items), dtype=np.int64) - np.repeat(dataset.offsets[:-1], dataset.lengths)


def user_of_entry(dataset: Dataset) -> np.ndarray:
    """For each entry of the flat item array, the user it belongs to."""
    return np.repeat(np.arange(dataset.n_users, dtype=np.int64), dataset.lengths)


@dataclass
class TrainingExamples:
    """One example per user with at least 2 training items: inputs = train[:-1], targets = train[1:].

    Only the last ``max_len`` positions are kept. ``users`` maps example rows to user indices (for negatives).
    """

    users: torch.Tensor  # int64 [N]
    inputs: torch.Tensor  # int64 [N, L]
    targets: torch.Tensor  # int64 [N, L]

    @classmethod
    def build(cls, dataset: Dataset, max_len: int) -> TrainingExamples:
        starts = dataset.offsets[:-1]
        ends = starts + dataset.train_lengths
        keep = dataset.train_lengths >= 2
        users = np.flatnonzero(keep)
        inputs = left_padded_windows(dataset.items, starts[keep], ends[keep] - 1, max_len)
        targets = left_padded_windows(dataset.items, starts[keep] + 1, ends[keep], max_len)
        return cls(torch.from_numpy(users), torch.from_numpy(inputs), torch.from_numpy(targets))

    def __len__(self) -> int:
        return len(self.users)

    def to(self, device: torch.device) -> TrainingExamples:
        return TrainingExamples(self.users.to(device), self.inputs.to(device), self.targets.to(device))
