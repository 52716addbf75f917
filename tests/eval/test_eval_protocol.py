"""The history mask never depends on the target (docs/PROTOCOL.md, "Masking"): the leak tests.

A scorer that gives +inf to every item of the user's input history is the worst case for a target-dependent
mask: if the target were exempted from the mask whenever it repeats a history item, that scorer would hit
every repeat target at rank 0.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from faerec.eval.evaluator import Evaluator
from faerec.eval.ranking import mask_scores, rank_targets

# users 0-2 have a repeat test target (the last item occurs earlier), user 3 a repeat validation target,
# users 4-5 none; items 1..9
SEQUENCES = [
    [1, 2, 3, 1],
    [4, 5, 6, 5],
    [7, 8, 7, 8, 7],
    [2, 3, 2, 9],
    [1, 4, 6, 9],
    [5, 7, 8, 3],
]
N_ITEMS = 9


HUGE = 1e30  # "+inf" through a matrix product: a real inf would make 0 * inf = NaN elsewhere


class HistoryLover(nn.Module):
    """Scores (practically) +inf for every item in the input window, a small random value elsewhere;
    rank_targets is also tested with a real +inf below."""

    def __init__(self, n_items: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.base = torch.rand(n_items + 1, generator=generator)
        self.n_items = n_items

    def item_table(self) -> torch.Tensor:
        # one-hot items and a constant column: user . item = user[item] + base[item]
        table = torch.zeros(self.n_items + 1, self.n_items + 2)
        table[:, : self.n_items + 1] = torch.eye(self.n_items + 1)
        table[:, -1] = self.base
        return table

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        users = torch.zeros(len(input_ids), self.n_items + 2)
        rows = torch.arange(len(input_ids))[:, None].expand_as(input_ids)
        users[rows[input_ids > 0], input_ids[input_ids > 0]] = HUGE
        users[:, -1] = 1.0
        return users


class NoiseOnly(HistoryLover):
    """The same scores without the +inf on the history."""

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        users = torch.zeros(len(input_ids), self.n_items + 2)
        users[:, -1] = 1.0
        return users


def _evaluate(make_dataset, protocol: str, split: str = "test") -> tuple[dict, Evaluator]:
    ds = make_dataset(SEQUENCES, n_items=N_ITEMS)
    evaluator = Evaluator(ds, max_len=10, protocol=protocol)
    return evaluator.evaluate(HistoryLover(N_ITEMS), split), evaluator


def test_novel_protocol_gives_a_history_scorer_no_hit(make_dataset):
    out, evaluator = _evaluate(make_dataset, "novel")
    assert out["protocol"] == "novel" and out["n_repeat_targets"] == 3
    assert evaluator.split("test").repeats.sum() == 3
    # the history is masked whatever the scorer says about it: no repeat target is ever hit, and the
    # other users' hits come from the non-history noise alone, never from the +inf history scores
    ranks, _ = evaluator.rank(HistoryLover(N_ITEMS), "test")
    repeats = evaluator.split("test").repeats
    assert (ranks[repeats] >= 20).all()
    history_free = Evaluator(evaluator.dataset, max_len=10).rank(NoiseOnly(N_ITEMS), "test")[0]
    assert np.array_equal(ranks[~repeats], history_free[~repeats])
    assert out["excluding_repeats"]["n_targets"]["overall"] == 3
    for k in (5, 10, 20):
        assert out["overall"][f"hr@{k}"] == pytest.approx((ranks[~repeats] < k).sum() / len(ranks))
        assert out["excluding_repeats"]["overall"][f"hr@{k}"] == pytest.approx((ranks[~repeats] < k).mean())


def test_novel_protocol_scores_no_hit_when_only_history_is_scored():
    # one row: history {1, 2}, target 2 (a repeat); scores +inf on the history, -1 elsewhere
    scores = torch.full((1, 6), -1.0)
    scores[0, [1, 2]] = float("inf")
    ranks, _ = rank_targets(scores, torch.tensor([2]), torch.tensor([0, 0]), torch.tensor([1, 2]), top_k=3)
    assert ranks.tolist() == [3]  # a miss, "top_k or worse"


def test_repeat_protocol_hits_exactly_the_repeat_targets(make_dataset):
    out, evaluator = _evaluate(make_dataset, "repeat")
    repeats = evaluator.split("test").repeats
    assert out["protocol"] == "repeat" and out["n_repeat_targets"] == int(repeats.sum()) == 3
    # with every history item at +inf, a repeat target ties at the top with the other history items; a
    # non-repeat target sits below all of them. With <= 4 history items a repeat target is inside the top 5
    ranks, _ = evaluator.rank(HistoryLover(N_ITEMS), "test")
    assert (ranks[repeats] < 5).all()
    windows = evaluator.split("test").inputs
    distinct_history = [(set(row.tolist()) - {0}) for row in windows]
    assert all(ranks[~repeats][i] >= len(h) for i, h in enumerate(np.array(distinct_history, dtype=object)[~repeats]))
    assert out["overall"]["hr@5"] == pytest.approx(repeats.mean())
    assert out["excluding_repeats"]["overall"]["hr@5"] == 0.0


def test_validation_uses_the_same_rule(make_dataset):
    out, evaluator = _evaluate(make_dataset, "novel", split="valid")
    repeats = evaluator.split("valid").repeats
    assert out["n_repeat_targets"] == int(repeats.sum()) >= 2  # users 2 and 3
    ranks, _ = evaluator.rank(HistoryLover(N_ITEMS), "valid")
    assert (ranks[repeats] >= 20).all()


@pytest.mark.parametrize("protocol", ["novel", "repeat"])
def test_same_history_different_target_same_mask(protocol):
    # two rows with the same history {1, 3}; row 0's target repeats item 3, row 1's target is item 4
    scores = torch.arange(12, dtype=torch.float32).reshape(2, 6).flip(1).contiguous()
    hist_rows, hist_items = torch.tensor([0, 0, 1, 1]), torch.tensor([1, 3, 1, 3])
    masked = mask_scores(scores.clone(), hist_rows, hist_items, protocol)
    assert torch.equal(torch.isinf(masked[0]), torch.isinf(masked[1]))
    expected = [0, 1, 3] if protocol == "novel" else [0]
    assert torch.isinf(masked[0]).nonzero().flatten().tolist() == expected
    # and the ranking of the targets never unmasks anything
    for targets in (torch.tensor([3, 4]), torch.tensor([4, 3])):
        work = scores.clone()
        rank_targets(work, targets, hist_rows, hist_items, top_k=3, protocol=protocol)
        assert torch.equal(torch.isinf(work[0]), torch.isinf(work[1]))
        assert torch.equal(torch.isinf(work), torch.isinf(masked))


def test_unknown_protocol_is_refused(make_dataset):
    with pytest.raises(ValueError, match="protocol"):
        Evaluator(make_dataset(SEQUENCES, n_items=N_ITEMS), max_len=5, protocol="exempt-target")
