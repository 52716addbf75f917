"""The FAERec item embedder: initialisation, gate, inference table, ablation switches, config contract."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from models_fixtures import N_ITEMS, left_padded, make_model, training_batch

from faerec.errors import FaerecError
from faerec.models import ModelConfig, build_model
from faerec.models.pca import pca_scores


def test_pca_initialisation_is_applied(world):
    llm, counts = world
    pca = torch.randn(N_ITEMS + 1, 16)
    pca[0] = 0
    model = build_model(ModelConfig(method="faerec", hidden=16, max_len=12), N_ITEMS, llm, pca, counts)
    torch.testing.assert_close(model.embedder.id_embedding.weight.detach(), pca, rtol=0, atol=0)
    # without a precomputed table the embedder runs the PCA itself
    model = make_model(world, method="faerec")
    torch.testing.assert_close(model.embedder.id_embedding.weight.detach(), pca_scores(llm, 16))


def test_pca_scores_match_sklearn_up_to_sign(world):
    from sklearn.decomposition import PCA

    llm, _ = world
    ours = pca_scores(llm, 8)
    theirs = torch.from_numpy(PCA(8).fit_transform(llm[1:].double().numpy())).float()
    assert ours[0].abs().sum() == 0
    torch.testing.assert_close(ours[1:].abs(), theirs.abs(), rtol=1e-4, atol=1e-4)


def test_gate_is_strictly_between_zero_and_one(world):
    model = make_model(world, method="faerec")
    inputs, pos, neg = training_batch([11, 7, 3], 12)
    for epoch in range(3):  # also after a few optimiser steps
        gate = model.embedder.gate_values(inputs, model.backbone)
        assert gate.shape == (int((inputs != 0).sum()), 16)
        assert (gate > 0).all() and (gate < 1).all()
        loss, _ = model.training_loss(inputs, pos, neg, epoch)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.1 * p.grad
                    p.grad = None


def test_item_table_is_layernorm_of_id_plus_projected_llm(world):
    model = make_model(world, method="faerec").eval()
    emb = model.embedder
    with torch.no_grad():
        table = model.item_table()
        expected = emb.fusion_norm(emb.id_embedding.weight + emb.projection(emb.llm_table))
    assert table[0].abs().sum() == 0
    torch.testing.assert_close(table[1:], expected[1:])
    base = make_model(world, method="base")
    assert base.item_table() is base.embedder.id_embedding.weight


def test_inference_projection_is_recomputed_after_the_weights_change(world):
    """Scoring reuses one projected LLM table per set of weights; a training step or load_state_dict must not
    leave it stale."""
    model = make_model(world, method="faerec")
    ids = left_padded([6, 3, 1], 8, seed=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    def fresh_user_embedding():
        emb = model.embedder
        with torch.no_grad():
            emb._projected_cache = None
            return model.user_embedding(ids), model.item_table()

    model.eval()
    with torch.no_grad():
        before_users, before_table = model.user_embedding(ids), model.item_table()
    torch.testing.assert_close((before_users, before_table), fresh_user_embedding())
    model.train()
    inputs, targets, negatives = training_batch([6, 4, 2], 7, seed=4)
    loss, _ = model.training_loss(inputs, targets, negatives, 0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after_users, after_table = model.user_embedding(ids), model.item_table()
    assert not torch.allclose(after_table, before_table)
    torch.testing.assert_close((after_users, after_table), fresh_user_embedding())
    model.load_state_dict(make_model(world, method="faerec", seed=9).state_dict())
    with torch.no_grad():
        loaded = model.item_table()
    torch.testing.assert_close(loaded, fresh_user_embedding()[1])


@pytest.mark.parametrize("targets", ["id", "fused"])
def test_training_targets_switch(world, targets):
    from faerec.models.layers import SeqLayout

    model = make_model(world, method="faerec", train_targets=targets).eval()  # eval: no dropout
    inputs, pos, neg = training_batch([11, 5], 12)
    layout = SeqLayout.from_ids(inputs)
    pos_tokens = layout.tokens_of(pos)
    with torch.no_grad():
        terms = model.embedder.training_terms(inputs, layout, pos_tokens, pos_tokens, model.backbone, 0)
        reference = model.item_table() if targets == "fused" else model.embedder.id_embedding.weight
    torch.testing.assert_close(terms.positives, reference[pos_tokens])


def parts_of(world, **overrides):
    model = make_model(world, method="faerec", **overrides)
    inputs, pos, neg = training_batch([11, 9, 6, 4, 2], 12)
    torch.manual_seed(1)
    return model.training_loss(inputs, pos, neg, epoch=10)


def test_ablation_switches(world):
    loss, full = parts_of(world)
    assert full["item_align"] > 0 and full["feat_align"] > 0
    expected = full["rec"] + 0.2 * (full["w_item"] * full["item_align"] + full["w_feat"] * full["feat_align"])
    assert loss.item() == pytest.approx(expected, rel=1e-5)

    _, no_ila = parts_of(world, item_align=False)
    assert no_ila["item_align"] == 0 and no_ila["feat_align"] == pytest.approx(full["feat_align"], rel=1e-5)
    _, no_fla = parts_of(world, feat_align=False)
    assert no_fla["feat_align"] == 0 and no_fla["item_align"] == pytest.approx(full["item_align"], rel=1e-5)
    _, no_cls = parts_of(world, curriculum=False, fixed_w_item=0.5)
    assert (no_cls["w_item"], no_cls["w_feat"]) == (0.5, 0.5) and full["w_item"] != 0.5
    _, no_pg = parts_of(world, pop_grouping=False)
    assert no_pg["feat_align"] != pytest.approx(full["feat_align"])
    assert no_pg["item_align"] == pytest.approx(full["item_align"], rel=1e-5)

    no_agf = make_model(world, method="faerec", gate=False)
    assert no_agf.embedder.gate is None
    assert no_agf.embedder.gate_values(left_padded([3], 12), no_agf.backbone) is None
    _, parts = parts_of(world, gate=False)
    assert parts["rec"] != pytest.approx(full["rec"])


def test_padding_row_gets_no_gradient_and_stays_zero(world):
    for method in ("base", "faerec"):
        model = make_model(world, method=method)
        inputs, pos, neg = training_batch([11, 2, 0], 12)
        loss, _ = model.training_loss(inputs, pos, neg, epoch=0)
        loss.backward()
        weight = model.embedder.id_embedding.weight
        assert weight.grad[0].abs().sum() == 0 and weight[0].abs().sum() == 0
        assert weight.grad[1:].abs().sum() > 0


def test_faerec_requires_llm_table_and_checks_shapes(world):
    llm, counts = world
    with pytest.raises(FaerecError, match="LLM item embeddings"):
        build_model(ModelConfig(method="faerec"), N_ITEMS, None, None, counts)
    with pytest.raises(FaerecError, match="llm_table has shape"):
        build_model(ModelConfig(method="faerec"), N_ITEMS, llm[:-1], None, counts)
    with pytest.raises(FaerecError, match="pca_init has shape"):
        build_model(ModelConfig(method="faerec", hidden=16), N_ITEMS, llm, torch.zeros(N_ITEMS + 1, 8), counts)
    build_model(ModelConfig(method="base", hidden=16), N_ITEMS, None, None, counts)  # base needs no table


def test_config_is_json_round_trippable_and_validated():
    cfg = ModelConfig.create(backbone="lru", method="faerec", gate=False, train_targets="fused")
    saved = json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert ModelConfig.from_dict(saved) == cfg
    with pytest.raises(FaerecError, match="unknown backbone"):
        ModelConfig(backbone="gru")
    with pytest.raises(FaerecError, match="unknown field"):
        ModelConfig.from_dict({**saved, "colour": "red"})
    with pytest.raises(FaerecError, match="divisible"):
        ModelConfig.create(hidden=10, heads=3)


def test_checkpoint_holds_parameters_not_the_frozen_tables(world):
    model = make_model(world, method="faerec")
    state = model.state_dict()
    assert not any(key.endswith(("llm_table", "popularity")) for key in state)
    again = make_model(world, seed=5, method="faerec")
    again.load_state_dict(state)
    ids = left_padded([12, 4], 12)
    with torch.no_grad():
        torch.testing.assert_close(again.eval().user_embedding(ids), model.eval().user_embedding(ids))


def test_same_seed_same_loss(world):
    inputs, pos, neg = training_batch([11, 6, 3], 12)
    losses = []
    for _ in range(2):
        model = make_model(world, seed=3, method="faerec", backbone="sasrec")
        torch.manual_seed(11)
        losses.append(model.training_loss(inputs, pos, neg, epoch=1)[0].item())
    assert losses[0] == losses[1]


def test_dropout_keeps_the_right_share_and_rescales():
    from faerec.models.layers import Dropout

    drop = Dropout(0.4).train()
    out = drop(torch.ones(200_000))
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(0.6, abs=0.005)
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.6))
    assert torch.equal(drop.eval()(out), out)


def test_dropout_masks_follow_torchs_random_state_and_differ_between_calls():
    # the masks come from torch's CPU generator: a checkpoint's torch state restores them (resume)
    from faerec.models.layers import Dropout

    drop = Dropout(0.5).train()
    torch.manual_seed(3)
    state = torch.get_rng_state()
    first, second = drop(torch.ones(5000)), drop(torch.ones(5000))
    assert not torch.equal(first != 0, second != 0)
    torch.set_rng_state(state)
    assert torch.equal(drop(torch.ones(5000)), first) and torch.equal(drop(torch.ones(5000)), second)
    # neighbouring 16-bit slices of one word are not correlated: keep/keep pairs occur a quarter of the time
    pairs = (drop(torch.ones(400_000)) != 0).view(-1, 2)
    assert (pairs[:, 0] & pairs[:, 1]).float().mean().item() == pytest.approx(0.25, abs=0.005)


def test_row_gathers_have_a_reproducible_gradient_with_several_threads():
    """FAERec gathers item rows by an index with repeats; plain indexing accumulates their gradient with atomic
    adds on a multi-threaded CPU (run-to-run differences in the last bits), layers.take must not."""
    from faerec.models.layers import take

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(0)
        table = torch.randn(3000, 64, generator=gen, requires_grad=True)
        index = torch.randint(0, 3000, (20000,), generator=gen)
        weights = torch.randn(20000, 64, generator=gen)

        def gradient() -> torch.Tensor:
            table.grad = None
            (take(table, index) * weights).sum().backward()
            return table.grad.clone()

        reference = gradient()
        assert all(torch.equal(reference, gradient()) for _ in range(10))
        torch.testing.assert_close(reference, torch.zeros_like(table).index_add_(0, index, weights))
    finally:
        torch.set_num_threads(before)
