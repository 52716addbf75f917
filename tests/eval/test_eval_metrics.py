"""Metrics on hand-made rankings: ties, masking (negative scores), targets in history, groups, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faerec.eval.metrics import Popularity, coverage, head_by_share, hit_and_ndcg, summarize
from faerec.eval.ranking import rank_targets

NO_HISTORY = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))


def ranks_of(scores: list[list[float]], targets: list[int], history: list[tuple[int, int]] = ()) -> list[int]:
    rows = torch.tensor([r for r, _ in history], dtype=torch.long)
    items = torch.tensor([i for _, i in history], dtype=torch.long)
    ranks, _ = rank_targets(torch.tensor(scores), torch.tensor(targets), rows, items, top_k=20)
    return ranks.tolist()


def test_ties_are_pessimistic():
    # items 2 and 3 share the best score: the target ranks after its tie, whichever of the two it is
    scores = [[0.0, 1.0, 2.0, 2.0, 0.5]] * 3
    assert ranks_of(scores, [2, 3, 1]) == [1, 1, 2]


def test_constant_scores_give_the_worst_rank():
    assert ranks_of([[0.0] * 5], [3]) == [3]  # 4 real items, all tied: last place


def test_history_and_padding_are_masked_with_minus_infinity_even_for_negative_scores():
    # every real score is negative; padding (5.0) and history items 1, 4 outrank the target before masking.
    # Masking with 0 instead of -inf would still rank all three above the target (rank 3); -inf gives rank 0.
    scores = [[5.0, -1.0, -2.0, -3.0, -0.5]]
    assert ranks_of(scores, [2]) == [2]  # padding is always masked; items 1 and 4 still outrank the target
    assert ranks_of(scores, [2], history=[(0, 1), (0, 4)]) == [0]


def test_a_repeat_target_is_masked_like_the_rest_of_the_history():
    scores = [[0.0, 1.0, 3.0, 2.0], [0.0, 1.0, 3.0, 2.0]]
    # row 0's target 2 is also in its history (a repeat purchase): masked, so a miss under "novel";
    # row 1 has item 2 in its history only, and its target 3 moves up to first place
    assert ranks_of(scores, [2, 3], history=[(0, 2), (1, 2)]) == [20, 0]


def test_nan_target_score_is_a_miss_and_masked_items_leave_the_top_list():
    scores = torch.tensor([[9.0, float("nan"), 1.0, 2.0, 3.0], [9.0, 4.0, 1.0, 2.0, 3.0]])
    ranks, top = rank_targets(scores, torch.tensor([1, 2]), torch.tensor([1]), torch.tensor([4]), top_k=3)
    assert ranks.tolist() == [3, 2]
    assert top[1].tolist() == [1, 3, 2]  # padding (9.0) and history item 4 (3.0) are gone


def test_ranks_are_exact_below_top_k_and_capped_above_with_pessimistic_ties():
    # the target ties with 2 other items and nothing scores higher: rank 2, exact with top_k = 3
    scores = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.5, 0.2]])
    ranks, _ = rank_targets(scores.clone(), torch.tensor([1]), *NO_HISTORY, top_k=3)
    assert ranks.tolist() == [2]
    # with 3 tying competitors the pessimistic rank is 3 = "top_k or worse"
    scores = torch.tensor([[0.0, 1.0, 1.0, 1.0, 1.0, 0.2]])
    ranks, _ = rank_targets(scores.clone(), torch.tensor([2]), *NO_HISTORY, top_k=3)
    assert ranks.tolist() == [3]
    # a long run of ties and a target far down the list are capped, never reported as a hit
    scores = torch.zeros(2, 40)
    scores[1, 5] = -1.0
    ranks, _ = rank_targets(scores, torch.tensor([7, 5]), *NO_HISTORY, top_k=20)
    assert ranks.tolist() == [20, 20]


def test_masked_items_are_blanked_in_short_top_lists():
    scores = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    _, top = rank_targets(scores, torch.tensor([3]), torch.tensor([0, 0]), torch.tensor([1, 2]), top_k=3)
    assert top.tolist() == [[3, 0, 0]]  # only item 3 is rankable; masked slots carry padding, never counted


def test_hit_and_ndcg_by_hand():
    ranks = np.array([0, 4, 5, 9, 19, 20])
    m = hit_and_ndcg(ranks)
    assert m["hr@5"] == pytest.approx(2 / 6)
    assert m["hr@10"] == pytest.approx(4 / 6)
    assert m["hr@20"] == pytest.approx(5 / 6)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(6)) / 6)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(6) + 1 / math.log2(7) + 1 / math.log2(11)) / 6)
    assert m["ndcg@20"] == pytest.approx(m["ndcg@10"] + 1 / math.log2(21) / 6)
    assert hit_and_ndcg(np.zeros(0, dtype=np.int64))["ndcg@10"] is None


def test_buckets_groups_and_cold():
    # items 1..6; training counts: 1->60 (head), 2->12, 3->0 (cold), 4->3, 5->7, 6->25
    counts = np.array([0, 60, 12, 0, 3, 7, 25])
    is_head = np.array([False, True, False, False, False, False, False])
    pop = Popularity(counts, is_head)
    targets = np.array([1, 2, 3, 4, 5, 6, 1])
    ranks = np.array([0, 30, 2, 7, 12, 1, 25])
    top = np.tile(np.array([[1, 2, 3, 4, 5, 6]]), (7, 4))[:, :20]
    out = summarize(ranks, targets, top, pop)
    assert out["overall"]["hr@10"] == pytest.approx(4 / 7)
    assert out["head"]["hr@10"] == pytest.approx(1 / 2)  # ranks 0 and 25
    assert out["tail"]["hr@10"] == pytest.approx(3 / 5)  # ranks 30, 2, 7, 12, 1
    assert out["cold"]["hr@5"] == 1.0 and out["n_targets"]["cold"] == 1
    assert out["groups"]["1-4"]["hr@10"] == 1.0  # item 4, rank 7
    assert out["groups"]["5-9"]["hr@10"] == 0.0  # item 5, rank 12
    assert out["groups"]["10-19"]["hr@20"] == 0.0  # item 2, rank 30
    assert out["groups"]["20-49"]["ndcg@5"] == pytest.approx(1 / math.log2(3))  # item 6, rank 1
    assert out["groups"]["50+"]["hr@20"] == pytest.approx(1 / 2)
    assert out["n_targets"]["groups"] == {"1-4": 1, "5-9": 1, "10-19": 1, "20-49": 1, "50+": 2}
    assert sum(out["n_targets"]["groups"].values()) + out["n_targets"]["cold"] == 7
    assert set(out) >= {"overall", "head", "tail", "cold", "groups", "coverage@10", "tail_coverage@10",
                        "coverage@20", "tail_coverage@20"}
    for bucket in ("overall", "head", "tail", "cold"):
        assert set(out[bucket]) == {f"{m}@{k}" for m in ("hr", "ndcg") for k in (5, 10, 20)}


def test_empty_bucket_reports_none():
    pop = Popularity(np.array([0, 5, 5]), np.array([False, True, False]))
    out = summarize(np.array([0]), np.array([1]), np.array([[1, 2]]), pop)
    assert out["tail"]["hr@10"] is None and out["n_targets"]["tail"] == 0


def test_coverage_by_hand():
    # 10 items, head = {1, 2}; tails = 3..10 (8 items)
    is_head = np.zeros(11, dtype=bool)
    is_head[[1, 2]] = True
    pop = Popularity(np.zeros(11, dtype=np.int64), is_head)
    top = np.zeros((2, 20), dtype=np.int64)
    top[0, :10] = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    top[1, :10] = [1, 6, 1, 6, 1, 6, 1, 6, 1, 6]
    top[:, 10:] = 7  # only visible at K = 20; padding 0 never counts
    out = coverage(top, pop)
    assert out["coverage@10"] == pytest.approx(6 / 10)
    assert out["tail_coverage@10"] == pytest.approx(4 / 8)
    assert out["coverage@20"] == pytest.approx(7 / 10)
    assert out["tail_coverage@20"] == pytest.approx(5 / 8)


def test_head_by_share_takes_top_fifth_with_deterministic_ties():
    counts = np.array([0, 5, 9, 9, 1, 0, 2, 2, 2, 3, 4])  # 10 items -> 2 head items
    assert np.flatnonzero(head_by_share(counts)).tolist() == [2, 3]
    counts = np.array([0, 1, 1, 1, 1, 1])  # 5 items -> 1 head item; tie broken by the smaller item_idx
    assert np.flatnonzero(head_by_share(counts)).tolist() == [1]
