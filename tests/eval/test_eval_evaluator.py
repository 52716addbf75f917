"""The evaluator end to end on small datasets: splits, a per-user reference, batch-size independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from faerec.eval.evaluator import Evaluator, popularity_of
from faerec.eval.splits import EvalSplit


class PositionWeightedBag(nn.Module):
    """A fixed scorer: user = Linear(sum_t w_t * emb(item_t)); enough to make the ranking depend on the input."""

    def __init__(self, n_items: int, max_len: int, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("weights", torch.linspace(0.2, 1.0, max_len))
        self.tables_built = 0

    def item_table(self) -> torch.Tensor:
        self.tables_built += 1
        return self.emb.weight

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.proj((self.emb(input_ids) * self.weights[None, :, None]).sum(1))


def random_sequences(n_users: int, n_items: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 14, size=n_users)
    # small catalogue + long sequences -> repeats, so some targets also occur in their own history
    return [rng.integers(1, n_items + 1, size=n).tolist() for n in lengths]


def reference_ranks(model, sequences, n_items, split, max_len, protocol="novel"):
    """One user at a time, straight from the definitions in docs/PROTOCOL.md (a masked target is a miss)."""
    ranks, targets = [], []
    table = model.item_table().detach().numpy().astype(np.float64)
    for seq in sequences:
        if len(seq) < 3:
            continue
        history = seq[:-2] if split == "valid" else seq[:-1]
        target = seq[len(history)]
        window = history[-max_len:]
        ids = torch.tensor([[0] * (max_len - len(window)) + window])
        with torch.no_grad():
            user = model.user_embedding(ids)[0].numpy().astype(np.float64)
        scores = table @ user
        masked = np.zeros(n_items + 1, dtype=bool)
        masked[0] = True
        if protocol == "novel":
            masked[history] = True
        others = np.delete(np.arange(n_items + 1), target)
        hit_possible = not masked[target]
        ranks.append(int(np.sum(scores[others][~masked[others]] >= scores[target])) if hit_possible else 10**9)
        targets.append(target)
    return np.array(ranks), np.array(targets)


def test_splits_follow_leave_one_out(make_dataset):
    ds = make_dataset([[1, 2, 3, 4, 5], [6, 7], [2, 2, 3]], n_items=7)
    valid = EvalSplit.build(ds, "valid", max_len=2)
    test = EvalSplit.build(ds, "test", max_len=2)
    # user 1 is too short; rows are ordered by window length, then user
    assert valid.users.tolist() == [2, 0] and test.users.tolist() == [0, 2]
    assert valid.inputs.tolist() == [[0, 2], [2, 3]] and valid.targets.tolist() == [2, 4]
    assert test.inputs.tolist() == [[3, 4], [2, 2]] and test.targets.tolist() == [5, 3]
    # histories are full prefixes, not just the window
    assert valid.hist_items.tolist() == [2, 1, 2, 3] and valid.hist_rows.tolist() == [0, 1, 1, 1]
    assert valid.hist_ptr.tolist() == [0, 1, 4]
    assert test.hist_items.tolist() == [1, 2, 3, 4, 2, 2] and test.hist_ptr.tolist() == [0, 4, 6]


@pytest.mark.parametrize("protocol", ["novel", "repeat"])
@pytest.mark.parametrize("split", ["valid", "test"])
def test_matches_per_user_reference(make_dataset, split, protocol):
    n_items, max_len = 45, 5
    sequences = random_sequences(80, n_items, seed=3)
    ds = make_dataset(sequences, n_items=n_items)
    model = PositionWeightedBag(n_items, max_len)
    evaluator = Evaluator(ds, max_len=max_len, batch_size=7, protocol=protocol)
    ranks, _ = evaluator.rank(model, split)
    assert model.tables_built == 1  # the item table is computed once per evaluation, not per batch
    expected, targets = reference_ranks(model, sequences, n_items, split, max_len, protocol)
    row_to_reference = np.searchsorted(np.flatnonzero(ds.evaluable), evaluator.split(split).users)
    assert np.array_equal(evaluator.split(split).targets.numpy(), targets[row_to_reference])
    assert np.array_equal(ranks, np.minimum(expected, 20)[row_to_reference])  # exact below 20, else capped
    assert (expected < 20).any() and (expected >= 20).any()
    assert len(ranks) == int(ds.evaluable.sum()) < len(sequences)


def test_results_do_not_depend_on_batch_size(make_dataset):
    n_items, max_len = 40, 6
    sequences = random_sequences(300, n_items, seed=5)
    ds = make_dataset(sequences, n_items=n_items, head={1, 2, 3, 4, 5, 6, 7, 8})
    model = PositionWeightedBag(n_items, max_len, seed=1)
    results = []
    for batch_size in (1, 7, 64, 4096):
        for split in ("valid", "test"):
            ranks, tops = Evaluator(ds, max_len=max_len, batch_size=batch_size).rank(model, split)
            results.append((batch_size, split, ranks, tops))
    for batch_size, split, ranks, tops in results:
        ref = next(r for r in results if r[1] == split)
        assert np.array_equal(ranks, ref[2]), (batch_size, split)
        assert np.array_equal(tops[:, :20], ref[3][:, :20]), (batch_size, split)
    full = [Evaluator(ds, max_len=max_len, batch_size=b).evaluate(model, "test") for b in (3, 1000)]
    for result in full:
        result.pop("seconds")
    assert full[0] == full[1]


def test_paper_popularity_is_labelled_and_uses_full_counts(make_dataset):
    ds = make_dataset([[1, 2, 3, 4, 5], [1, 2, 5, 5, 5]], n_items=5)
    train, paper = popularity_of(ds, "train"), popularity_of(ds, "paper")
    assert train.label == "train" and paper.label == "paper"
    assert train.counts[5] == 1 and paper.counts[5] == 4
    assert np.flatnonzero(paper.is_head).tolist() == [5]
    model = PositionWeightedBag(5, 3)
    out = Evaluator(ds, max_len=3, popularity="paper").evaluate(model, "test")
    assert out["popularity"] == "paper" and out["n_targets"]["head"] == 2  # both test targets are item 5


def test_alternative_popularity_rebuckets_the_same_ranking(make_dataset):
    sequences = random_sequences(120, 30, seed=9)
    ds = make_dataset(sequences, n_items=30, head={1, 2, 3, 4, 5, 6})
    model = PositionWeightedBag(30, 4)
    out = Evaluator(ds, max_len=4).evaluate(model, "test", also=("paper",))
    paper_only = Evaluator(ds, max_len=4, popularity="paper").evaluate(model, "test")
    alt = out["paper_popularity"]
    assert out["popularity"] == "train" and alt["popularity"] == "paper" and "overall" not in alt
    for key in ("head", "tail", "cold", "groups", "coverage@10", "tail_coverage@20"):
        assert alt[key] == paper_only[key], key
