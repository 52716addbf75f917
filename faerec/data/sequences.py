"""Vectorised views of a dataset's flat item array (faerec.data.dataset): windows, positions, owners.

Windows are LEFT-padded with item 0 (faerec.models.interface): column -1 is the most recent item. Shared by
the trainer's examples and the evaluator's splits.
"""

from __future__ import annotations

import numpy as np

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
