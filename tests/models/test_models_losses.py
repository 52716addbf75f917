"""Each loss against values computed by hand, and against the authors' occurrence-level formulation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from faerec.device import similarity_bf16
from faerec.models.losses import (
    INFONCE_ROWS_STEP,
    LSE_BLOCK_ROWS,
    barlow_twins,
    bce_loss,
    curriculum_weights,
    feature_alignment,
    item_infonce,
    weighted_lower_median,
)


def test_bce_by_hand():
    pos, neg = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    by_hand = (2 * math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert bce_loss(pos, neg).item() == pytest.approx(by_hand, rel=1e-6)
    assert bce_loss(torch.zeros(0), torch.zeros(0)).item() == 0.0


def test_infonce_by_hand_with_duplicate_masking():
    ids = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    llm = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # cosines: s = [[1, 1], [0, 0]]
    # one occurrence each: both rows are -log(e^s / (e^s + e^s)) = log 2
    assert item_infonce(ids, llm, torch.tensor([1, 1]), 1.0).item() == pytest.approx(math.log(2))
    # item 1 twice: item 0's row sees item 1's two occurrences as negatives -> log 3; each occurrence of
    # item 1 masks the other one and keeps item 0 as its only negative -> log 2
    expected = (math.log(3) + 2 * math.log(2)) / 3
    assert item_infonce(ids, llm, torch.tensor([1, 2]), 1.0).item() == pytest.approx(expected, rel=1e-6)


def occurrence_infonce(ids, llm, item_of_row, temperature):
    """The authors' form: one row per occurrence, other occurrences of the same item masked out."""
    sim = F.normalize(ids, dim=1) @ F.normalize(llm, dim=1).T / temperature
    same = (item_of_row[:, None] == item_of_row[None, :]) & ~torch.eye(len(item_of_row), dtype=torch.bool)
    return F.cross_entropy(sim.masked_fill(same, float("-inf")), torch.arange(len(item_of_row)))


def occurrence_barlow_twins(a, b, off_diagonal_weight):
    """The authors' form on occurrence rows: torch.std standardisation, C = z_a^T z_b / N."""
    za = (a - a.mean(0)) / (a.std(0) + 1e-5)
    zb = (b - b.mean(0)) / (b.std(0) + 1e-5)
    c = za.T @ zb / a.shape[0]
    diff = (c - torch.eye(c.shape[0])).pow(2)
    return diff.diagonal().sum() + off_diagonal_weight * (diff.sum() - diff.diagonal().sum())


def test_distinct_item_losses_equal_occurrence_level_losses_and_gradients():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    llm = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    counts = torch.tensor([1, 3, 1, 2, 4, 1])
    rows = torch.repeat_interleave(torch.arange(6), counts)
    for ours, theirs in [
        (item_infonce(ids, llm, counts, 0.05), occurrence_infonce(ids[rows], llm[rows], rows, 0.05)),
        (barlow_twins(ids, llm, counts, 0.005), occurrence_barlow_twins(ids[rows], llm[rows], 0.005)),
    ]:
        torch.testing.assert_close(ours, theirs)
        for g1, g2 in zip(torch.autograd.grad(ours, [ids, llm]), torch.autograd.grad(theirs, [ids, llm]),
                          strict=True):
            torch.testing.assert_close(g1, g2)


def test_barlow_twins_by_hand():
    # two items, two dims: standardised columns are (-1, 1)/sqrt(2) and (1, -1)/sqrt(2) (unbiased std),
    # so C = z^T z / 2 = [[0.5, -0.5], [-0.5, 0.5]] and the loss is 2 * 0.5^2 + w * 2 * 0.5^2
    x = torch.tensor([[1.0, 5.0], [3.0, 1.0]])
    assert barlow_twins(x, x, torch.tensor([1, 1]), 0.1).item() == pytest.approx(0.5 + 0.1 * 0.5, rel=1e-4)


def test_barlow_twins_constant_column_has_finite_gradient():
    a = torch.tensor([[1.0, 2.0], [1.0, 3.0]], requires_grad=True)
    barlow_twins(a, a.detach() + 1, torch.tensor([1, 1]), 0.005).backward()
    assert torch.isfinite(a.grad).all()


def test_weighted_median_is_the_lower_median_of_occurrences():
    values, counts = torch.tensor([10, 1, 7, 3]), torch.tensor([1, 2, 1, 3])
    expanded = torch.repeat_interleave(values, counts)  # 7 occurrences
    assert weighted_lower_median(values, counts).item() == torch.median(expanded).item() == 3
    values, counts = torch.tensor([4, 1, 9, 2]), torch.tensor([1, 1, 1, 1])  # even: lower middle of 1 2 4 9
    assert weighted_lower_median(values, counts).item() == 2


def test_feature_alignment_groups_at_the_median():
    gen = torch.Generator().manual_seed(1)
    ids, llm = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    popularity = torch.tensor([1, 10, 3, 7, 2])
    counts = torch.tensor([1, 1, 2, 1, 1])  # occurrences' popularity: 1 10 3 3 7 2 -> lower median 3
    high, low = popularity >= 3, popularity < 3
    expected = barlow_twins(ids[high], llm[high], counts[high], 0.005) + barlow_twins(
        ids[low], llm[low], counts[low], 0.005
    )
    grouped = feature_alignment(ids, llm, counts, popularity, 0.005, grouped=True)
    torch.testing.assert_close(grouped, expected)
    ungrouped = feature_alignment(ids, llm, counts, popularity, 0.005, grouped=False)
    torch.testing.assert_close(ungrouped, barlow_twins(ids, llm, counts, 0.005))
    # popularity 1 10 10 -> median 10: the low group is a single occurrence, which has no batch
    # statistics and contributes nothing
    ones = torch.tensor([1, 1, 1])
    single = feature_alignment(ids[:3], llm[:3], ones, torch.tensor([1, 10, 10]), 0.005, True)
    torch.testing.assert_close(single, barlow_twins(ids[1:3], llm[1:3], ones[1:], 0.005))


def test_curriculum_values():
    assert curriculum_weights(0, 0.9, 1.0, 30) == pytest.approx((1.0, 0.0))
    assert curriculum_weights(15, 0.9, 1.0, 30) == pytest.approx((0.9, 0.1))
    assert curriculum_weights(30, 0.9, 1.0, 30) == pytest.approx((1.0, 0.0))
    w_item, w_feat = curriculum_weights(5, 0.9, 1.0, 30)  # (1 + cos(pi/3)) / 2 = 0.75
    assert w_item == pytest.approx(0.975) and w_feat == pytest.approx(0.025)


def _distinct_items(n_items: int, dim: int, dtype=torch.float64):
    gen = torch.Generator().manual_seed(1)
    ids = torch.randn(n_items, dim, generator=gen, dtype=dtype, requires_grad=True)
    llm = torch.randn(n_items, dim, generator=gen, dtype=dtype, requires_grad=True)
    counts = torch.randint(1, 4, (n_items,), generator=gen)
    return ids, llm, counts


def test_infonce_over_several_row_blocks_and_padding_equals_the_occurrence_form():
    # 300 items: two logsumexp blocks (LSE_BLOCK_ROWS) and 212 padded rows (INFONCE_ROWS_STEP)
    assert 300 > LSE_BLOCK_ROWS and 300 % INFONCE_ROWS_STEP
    ids, llm, counts = _distinct_items(300, 8)
    rows = torch.repeat_interleave(torch.arange(300), counts)
    ours, theirs = item_infonce(ids, llm, counts, 0.05), occurrence_infonce(ids[rows], llm[rows], rows, 0.05)
    torch.testing.assert_close(ours, theirs)
    for g1, g2 in zip(torch.autograd.grad(ours, [ids, llm]), torch.autograd.grad(theirs, [ids, llm]), strict=True):
        torch.testing.assert_close(g1, g2)


def test_infonce_with_bf16_similarity_stays_close_to_float32():
    ids, llm, counts = _distinct_items(700, 64, torch.float32)
    exact = item_infonce(ids, llm, counts, 0.05)
    exact_grads = torch.autograd.grad(exact, [ids, llm])
    with similarity_bf16(True):
        rounded = item_infonce(ids, llm, counts, 0.05)
    rounded_grads = torch.autograd.grad(rounded, [ids, llm])
    assert rounded.item() == pytest.approx(exact.item(), rel=1e-3)
    assert rounded.item() != exact.item()  # the bf16 path really ran
    for g1, g2 in zip(rounded_grads, exact_grads, strict=True):
        assert ((g1 - g2).norm() / g2.norm()).item() < 2e-2


def test_infonce_backward_refuses_a_second_pass():
    ids, llm, counts = _distinct_items(5, 4)
    loss = item_infonce(ids, llm, counts, 0.1)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        loss.backward()


def test_infonce_stays_finite_when_every_logit_of_a_row_is_far_below_zero():
    # temperature 0.01 and IDs opposite to every LLM row: all logits are -100, where exp() underflows float32;
    # the row max must come from the real keys, not from the zero logits of the padded ones
    direction = torch.nn.functional.normalize(torch.randn(16, generator=torch.Generator().manual_seed(3)), dim=0)
    llm = (direction + 0.01 * torch.randn(40, 16, generator=torch.Generator().manual_seed(4))).requires_grad_()
    ids = (-direction).repeat(40, 1).requires_grad_()
    counts = torch.randint(1, 4, (40,), generator=torch.Generator().manual_seed(5))
    ours = item_infonce(ids, llm, counts, 0.01)
    reference = item_infonce(ids.double(), llm.double(), counts, 0.01)
    assert torch.isfinite(ours)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-4)
