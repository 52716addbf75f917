"""Pre-tensorised training examples and vectorised negatives."""

from __future__ import annotations

import platform
import sys

import numpy as np
import pytest
import torch

from faerec.data.dataset import Dataset
from faerec.data.sequences import left_padded_windows
from faerec.train.negatives import NegativeSampler
from faerec.train.sequences import TrainingExamples


def test_left_padded_windows():
    items = np.array([1, 2, 3, 4, 5, 6, 7])
    out = left_padded_windows(items, np.array([0, 5, 3]), np.array([5, 7, 3]), max_len=3)
    assert out.tolist() == [[3, 4, 5], [0, 6, 7], [0, 0, 0]]


def test_training_examples_shift_by_one_and_exclude_valid_and_test(make_processed):
    # user 0: train 1 2 3 4 | valid 5 | test 6; user 1: train 7 8 | 9 | 10; user 2: too short: trains on 3, 4
    ds = Dataset.load(make_processed([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10], [3, 4]], 10))
    ex = TrainingExamples.build(ds, max_len=3)
    assert ex.users.tolist() == [0, 1, 2]
    assert ex.inputs.tolist() == [[1, 2, 3], [0, 0, 7], [0, 0, 3]]
    assert ex.targets.tolist() == [[2, 3, 4], [0, 0, 8], [0, 0, 4]]


def test_negatives_never_hit_the_training_sequence_but_may_hit_valid_and_test(make_processed, markov):
    n_items = 30
    ds = Dataset.load(make_processed(markov(200, n_items, seed=1, length=(5, 25)), n_items))
    examples = TrainingExamples.build(ds, max_len=20)
    sampler = NegativeSampler(ds, torch.Generator().manual_seed(0))
    train_sets = [set(ds.items[ds.offsets[u] : ds.offsets[u] + ds.train_lengths[u]].tolist())
                  for u in range(ds.n_users)]
    held_out_hits = 0
    counts = np.zeros(n_items + 1)
    for _ in range(20):
        rows = torch.randperm(len(examples))[:64]
        needed = examples.targets[rows] != 0
        neg = sampler.sample(examples.users[rows], needed)
        assert torch.equal(neg == 0, ~needed)
        for row, user in enumerate(examples.users[rows].tolist()):
            drawn = set(neg[row][needed[row]].tolist())
            assert not drawn & train_sets[user]
            held_out = set(ds.items[ds.offsets[user] + ds.train_lengths[user] : ds.offsets[user + 1]].tolist())
            held_out_hits += len(drawn & (held_out - train_sets[user]))
            np.add.at(counts, neg[row][needed[row]].numpy(), 1)
    assert held_out_hits > 0  # validation/test items are legitimate negatives (excluding them would leak)
    assert counts[0] == 0 and (counts[1:] > 0).all()


def test_negative_sampling_is_reproducible_and_uniform(make_processed):
    # one user whose training part is items 1..5 of 10: negatives must be uniform over 6..10
    ds = Dataset.load(make_processed([[1, 2, 3, 4, 5, 6, 7]], 10))
    users = torch.zeros(4000, dtype=torch.long)
    needed = torch.ones(4000, 5, dtype=torch.bool)
    a = NegativeSampler(ds, torch.Generator().manual_seed(3)).sample(users, needed)
    b = NegativeSampler(ds, torch.Generator().manual_seed(3)).sample(users, needed)
    assert torch.equal(a, b)
    freq = torch.bincount(a.flatten(), minlength=11).numpy() / a.numel()
    assert freq[:6].sum() == 0
    assert np.allclose(freq[6:], 0.2, atol=0.01)


def test_release_free_memory_trims_where_glibc_can():
    from faerec import memory

    # True exactly when the C library offers malloc_trim (glibc), which Linux CI machines have
    assert memory.release_free_memory() is (memory._malloc_trim() is not None)
    if sys.platform.startswith("linux") and "glibc" in platform.libc_ver()[0]:
        assert memory.release_free_memory() is True


def test_heap_guard_trims_only_after_resident_memory_grew_by_its_slack():
    import numpy as np

    from faerec.memory import HeapGuard

    guard = HeapGuard(slack_mb=32)
    if not guard.enabled:
        pytest.skip("needs glibc and /proc (Linux)")
    trims = guard.trims
    guard.check()
    assert guard.trims == trims  # nothing grew
    grown = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    guard.check()
    assert guard.trims == trims + 1 and grown.sum() > 0
    guard.check()
    assert guard.trims == trims + 1  # the new baseline includes the live array
    assert not HeapGuard(slack_mb=0).enabled
