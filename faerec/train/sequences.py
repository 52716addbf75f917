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
from faerec.data.sequences import left_padded_windows


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
