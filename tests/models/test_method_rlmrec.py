"""RLMRec-Con and RLMRec-Gen: the auxiliary losses against hand computations, the masking share, and an
inference path that is the plain ID model's."""

from __future__ import annotations

import math

import pytest
import torch
from models_fixtures import left_padded, make_model, training_batch
from torch import nn

from faerec.models import ModelConfig
from faerec.models.layers import SeqLayout
from faerec.models.losses import bce_loss
from faerec.models.methods.rlmrec import counted_infonce


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float(a @ b / (a.norm() * b.norm()))


def infonce_by_hand(queries, keys, temperature: float) -> float:
    """Mean over rows i of -log(exp(cos(q_i, k_i) / t) / sum_j exp(cos(q_i, k_j) / t)), one row per occurrence."""
    total = 0.0
    for i in range(len(queries)):
        logits = [cos(queries[i], keys[j]) / temperature for j in range(len(keys))]
        total += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
    return total / len(queries)


def test_counted_infonce_on_three_items_by_hand():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    keys = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [3.0, 0.0]])
    # cos(q_i, k_j): row 0 (1/sqrt2, -1/sqrt2, 1), row 1 (1/sqrt2, 1/sqrt2, 0), row 2 (1, 0, 1/sqrt2)
    r = 1 / math.sqrt(2)
    sims = [[r, -r, 1.0], [r, r, 0.0], [1.0, 0.0, r]]
    t = 0.2
    expected = sum(math.log(sum(math.exp(s / t) for s in row)) - row[i] / t for i, row in enumerate(sims)) / 3
    got = counted_infonce(queries, keys, torch.ones(3, dtype=torch.long), t)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got.item() == pytest.approx(infonce_by_hand(queries, keys, t), rel=1e-6)


def test_counted_infonce_is_the_official_occurrence_loss_with_duplicates():
    """RLMRec's cal_infonce_loss on occurrences [a, b, a, c, a, b]: duplicates stay in the denominator."""
    gen = torch.Generator().manual_seed(3)
    queries, keys = torch.randn(3, 5, generator=gen), torch.randn(3, 5, generator=gen)
    occurrences = torch.tensor([0, 1, 0, 2, 0, 1])
    expected = infonce_by_hand(queries[occurrences], keys[occurrences], 0.5)
    got = counted_infonce(queries, keys, torch.bincount(occurrences), 0.5)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_con_auxiliary_loss_is_kd_weight_times_the_positive_and_negative_infonce(world):
    model = make_model(world, method="rlmrec-con", kd_weight=0.3, kd_temperature=0.5).eval()
    emb = model.embedder
    inputs, pos, neg = torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]]), torch.tensor([[7, 8, 9]])
    layout = SeqLayout.from_ids(inputs)
    with torch.no_grad():
        ids, projected = emb.id_embedding.weight, emb.projection(emb.llm_table)
        terms = emb.training_terms(inputs, layout, layout.tokens_of(pos), layout.tokens_of(neg), model.backbone, 0)
        loss, parts = model.training_loss(inputs, pos, neg, epoch=0)
    positives, negatives = [2, 3, 4], [7, 8, 9]
    kd = infonce_by_hand(ids[positives], projected[positives], 0.5) + infonce_by_hand(
        ids[negatives], projected[negatives], 0.5)
    assert terms.parts["kd"].item() == pytest.approx(kd, rel=1e-5)
    assert terms.auxiliary.item() == pytest.approx(0.3 * kd, rel=1e-5)
    assert parts["total"] == pytest.approx(parts["rec"] + 0.3 * kd, rel=1e-5)
    assert loss.item() == pytest.approx(parts["total"])


def test_con_defaults_are_the_official_ones():
    options = ModelConfig.create(method="rlmrec-con").method_options
    assert (options.kd_weight, options.kd_temperature) == (0.01, 0.2)
    options = ModelConfig.create(method="rlmrec-gen").method_options
    assert (options.recon_weight, options.re_temperature, options.mask_ratio) == (0.1, 0.5, 0.15)


@pytest.mark.parametrize(("ratio", "expected"), [(0.15, 1), (0.0, 1), (0.5, 3), (0.9, 6), (1.0, 7)])
def test_gen_masks_the_configured_share_of_distinct_items(world, ratio, expected):
    model = make_model(world, method="rlmrec-gen", mask_ratio=ratio)
    tokens = torch.tensor([1, 2, 2, 3, 4, 5, 5, 5, 6, 7])  # 7 distinct items
    for seed in range(5):
        torch.manual_seed(seed)
        masked = model.embedder.choose_masked(tokens)
        chosen = set(tokens[masked].tolist())
        assert len(chosen) == expected  # max(int(7 * ratio), 1), as RLMRec's NodeMask
        assert masked.tolist() == [t in chosen for t in tokens.tolist()]  # every occurrence of a chosen item


def test_gen_loss_is_bce_on_the_masked_pass_plus_the_reconstruction_infonce(world):
    model = make_model(world, method="rlmrec-gen", mask_ratio=0.3, recon_weight=0.7, re_temperature=0.4).eval()
    emb = model.embedder
    with torch.no_grad():
        emb.mask_token.normal_()  # a non-zero mask token, so that masking visibly changes the input
    inputs, pos, neg = training_batch([11, 7, 3], 12)
    torch.manual_seed(9)
    loss, parts = model.training_loss(inputs, pos, neg, epoch=0)

    layout = SeqLayout.from_ids(inputs)
    tokens = layout.tokens_of(inputs)
    torch.manual_seed(9)
    masked = emb.choose_masked(tokens)
    n_distinct = torch.unique(tokens).numel()
    assert torch.unique(tokens[masked]).numel() == int(n_distinct * 0.3) >= 2
    with torch.no_grad():
        items = emb.id_embedding(tokens)
        items[masked] = emb.mask_token
        states = model.backbone.encode(emb.input_norm(model.backbone.embed_positions(items, layout)), layout)
        scored = layout.tokens_of(pos) != 0
        hidden = states[scored]
        rec = bce_loss((hidden * emb.id_embedding(layout.tokens_of(pos)[scored])).sum(-1),
                       (hidden * emb.id_embedding(layout.tokens_of(neg)[scored])).sum(-1))
        queries = emb.reconstructor(states[masked])
    masked_items = tokens[masked].tolist()
    keys_items = sorted(set(masked_items))
    recon = 0.0
    for query, item in zip(queries, masked_items, strict=True):
        logits = [cos(query, emb.llm_table[k]) / 0.4 for k in keys_items]
        recon += math.log(sum(math.exp(x) for x in logits)) - logits[keys_items.index(item)]
    recon /= len(masked_items)
    assert parts["recon"] == pytest.approx(recon, rel=1e-5)
    assert parts["rec"] == pytest.approx(rec.item(), rel=1e-5)
    assert loss.item() == pytest.approx(rec.item() + 0.7 * recon, rel=1e-5)


def test_gen_trains_the_mask_token_and_reconstructor(world):
    model = make_model(world, method="rlmrec-gen")
    inputs, pos, neg = training_batch([11, 7, 3], 12)
    loss, _ = model.training_loss(inputs, pos, neg, epoch=0)
    loss.backward()
    emb = model.embedder
    assert emb.mask_token.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in emb.reconstructor.parameters())
    assert emb.id_embedding.weight.grad[0].abs().sum() == 0


@pytest.mark.parametrize("method", ["rlmrec-con", "rlmrec-gen"])
def test_inference_uses_the_id_embeddings_alone(world, method):
    model = make_model(world, method=method).eval()
    assert model.item_table() is model.embedder.id_embedding.weight
    assert not any("llm" in key for key in model.state_dict())
    base = make_model(world, method="base").eval()
    state = model.state_dict()
    base.load_state_dict({key: state[key] for key in base.state_dict()})
    ids = left_padded([12, 6, 1], 12)
    with torch.no_grad():
        torch.testing.assert_close(model.user_embedding(ids), base.user_embedding(ids), rtol=0, atol=0)
    # the padding row of every table stays zero
    assert model.item_table()[0].abs().sum() == 0 and model.embedder.llm_table[0].abs().sum() == 0


def test_mlps_have_the_official_shapes(world):
    middle = (24 + 16) // 2  # (d_llm + hidden) // 2
    con = make_model(world, method="rlmrec-con").embedder.projection
    gen = make_model(world, method="rlmrec-gen").embedder.reconstructor
    for net, shapes in ((con, [(middle, 24), (16, middle)]), (gen, [(middle, 16), (24, middle)])):
        assert [tuple(layer.weight.shape) for layer in net if isinstance(layer, nn.Linear)] == shapes
        assert isinstance(net[1], nn.LeakyReLU)
