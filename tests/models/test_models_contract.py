"""The contract every registered backbone x method keeps (faerec.models.interface), driven by the registries:
a newly registered backbone or method is tested here without editing a list.

Shapes, causality, left-padding and batch-composition invariance, no NaN on empty rows, determinism, a
state_dict round trip, and finite losses and gradients.
"""

from __future__ import annotations

import pytest
import torch
from models_fixtures import N_ITEMS, left_padded, make_model, training_batch

from faerec.models import backbone_names, method_names

COMBOS = [(b, m) for b in backbone_names() for m in method_names()]
IDS = [f"{b}-{m}" for b, m in COMBOS]


def test_registries_hold_the_shipped_models():
    assert {"sasrec", "fmlp", "lru"} <= set(backbone_names())
    assert {"base", "faerec"} <= set(method_names())


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_shapes(world, backbone, method):
    model = make_model(world, backbone=backbone, method=method).eval()
    ids = left_padded([12, 5, 1, 0], 12)
    with torch.no_grad():
        users, table, states = model.user_embedding(ids), model.item_table(), model.sequence_states(ids)
    assert users.shape[0] == 4 and table.shape == (N_ITEMS + 1, users.shape[1])
    assert states.shape[:2] == (4, 12) and states.shape[2] == users.shape[1]
    assert torch.isfinite(table).all() and table[0].abs().sum() == 0  # padding row stays zero


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_user_embedding_is_the_last_sequence_state(world, backbone, method):
    """Scoring users may take a shortcut (Backbone.encode_last) but must equal the last column of the states."""
    model = make_model(world, backbone=backbone, method=method).eval()
    ids = left_padded([12, 5, 1, 0, 7], 12, seed=11)
    with torch.no_grad():
        users, states = model.user_embedding(ids), model.sequence_states(ids)
    torch.testing.assert_close(users, states[:, -1], rtol=1e-5, atol=1e-5)
    assert users[3].abs().sum() == 0  # a fully padded row has no state


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_causal(world, backbone, method):
    """Changing the item at position t changes no output at positions < t (and does change position t)."""
    model = make_model(world, backbone=backbone, method=method).eval()
    ids = left_padded([12, 9, 4], 12, seed=3)
    t = 8
    changed = ids.clone()
    changed[:, t] = changed[:, t] % N_ITEMS + 1  # a different real item
    with torch.no_grad():
        before, after = model.sequence_states(ids), model.sequence_states(changed)
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-5)
    assert (after[:, t] - before[:, t]).abs().max() > 1e-4


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_padding_and_batch_invariance(world, backbone, method):
    """A user's embedding depends neither on how far the batch is padded nor on the other rows."""
    model = make_model(world, backbone=backbone, method=method).eval()
    # rows of equal and of different lengths: a backbone may group rows by length internally, and a bug that
    # shifts positions under left padding only shows for rows that share a group
    batch = left_padded([12, 6, 3, 1, 7, 6, 6, 3], 12, seed=5)
    with torch.no_grad():
        together = model.user_embedding(batch)
        for row in range(batch.shape[0]):
            length = int((batch[row] != 0).sum())
            for pad in sorted({0, min(2, 12 - length), 12 - length}):  # none, a little, up to max_len
                ids = torch.cat([torch.zeros(pad, dtype=torch.long), batch[row, 12 - length :]])[None]
                torch.testing.assert_close(model.user_embedding(ids)[0], together[row], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_fully_padded_rows_give_no_nan_and_losses_are_finite(world, backbone, method):
    model = make_model(world, backbone=backbone, method=method).train()
    inputs, pos, neg = training_batch([0, 1, 0, 11], 12)
    users = torch.arange(4)
    loss, parts = model.training_loss(inputs, pos, neg, epoch=0, users=users)
    loss.backward()
    assert torch.isfinite(loss) and all(v == v for v in parts.values()) and {"rec", "total"} <= set(parts)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        embedded = model.user_embedding(left_padded([0, 0, 3], 12))
    assert torch.isfinite(embedded).all() and embedded[:2].abs().sum() == 0
    empty = torch.zeros(2, 12, dtype=torch.long)
    loss, _ = model.train().training_loss(empty, empty, empty, epoch=0, users=torch.arange(2))
    assert torch.isfinite(loss)


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_same_seed_same_model_and_loss(world, backbone, method):
    inputs, pos, neg = training_batch([11, 6, 3], 12)
    losses, states = [], []
    for _ in range(2):
        model = make_model(world, seed=3, backbone=backbone, method=method)
        states.append(model.state_dict())
        torch.manual_seed(11)
        losses.append(model.training_loss(inputs, pos, neg, epoch=1, users=torch.arange(3))[0].item())
    assert losses[0] == losses[1]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("backbone,method", COMBOS, ids=IDS)
def test_state_dict_round_trip(world, backbone, method):
    model = make_model(world, seed=1, backbone=backbone, method=method)
    again = make_model(world, seed=2, backbone=backbone, method=method)
    again.load_state_dict(model.state_dict())
    ids = left_padded([12, 4], 12)
    with torch.no_grad():
        torch.testing.assert_close(again.eval().user_embedding(ids), model.eval().user_embedding(ids))
        torch.testing.assert_close(again.item_table(), model.item_table())
