"""LLM-ESR (faerec/models/methods/llmesr.py): retrieval table, self-distillation by hand, frozen LLM table,
causality of the dual-view encoder (with its cross-attention), finite losses on two backbones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from models_fixtures import N_ITEMS, left_padded, training_batch

from faerec.data.dataset import Dataset
from faerec.errors import FaerecError
from faerec.models import ModelConfig, build_model
from faerec.models.layers import SeqLayout

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_USERS = 14


def dataset_from_sequences(sequences: list[list[int]], n_items: int) -> Dataset:
    """A Dataset whose user u has ``sequences[u]`` (the pattern of tests/eval/conftest.py)."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = np.array([i for s in sequences for i in s], dtype=np.int64)
    train_count = np.zeros(n_items + 1, dtype=np.int64)
    for seq in sequences:
        np.add.at(train_count, np.array(seq[:-2] if len(seq) >= 3 else seq, dtype=np.int64), 1)
    stats = {"users": len(sequences), "items": n_items, "dataset_id": "handmade"}
    return Dataset(Path("handmade"), len(sequences), n_items, items, offsets, train_count, train_count.copy(),
                   np.zeros(n_items + 1, dtype=bool), stats)


@pytest.fixture
def dataset() -> Dataset:
    rng = np.random.default_rng(3)
    lengths = [3, 4] + list(rng.integers(5, 17, N_USERS - 2))  # user 0 has 1 training item: not a candidate
    return dataset_from_sequences([list(rng.integers(1, N_ITEMS + 1, n)) for n in lengths], N_ITEMS)


def make_llmesr(world, dataset, seed: int = 0, **overrides):
    llm, counts = world
    fields = {"method": "llmesr", "hidden": 16, "layers": 2, "max_len": 12, "dropout": 0.2, **overrides}
    if fields.get("backbone", "sasrec") == "sasrec":
        fields.setdefault("heads", 2)
    torch.manual_seed(seed)
    return build_model(ModelConfig.create(**fields), N_ITEMS, llm, None, counts, dataset)


def train_parts(dataset: Dataset) -> list[np.ndarray]:
    return [dataset.items[dataset.offsets[u] : dataset.offsets[u] + dataset.train_lengths[u]]
            for u in range(dataset.n_users)]


def test_retrieval_table_is_the_bruteforce_cosine_top_n(world, dataset):
    llm = world[0].double().numpy()
    parts = train_parts(dataset)
    users = np.stack([llm[p].mean(0) for p in parts])
    unit = users / np.linalg.norm(users, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)  # never the user itself
    sims[:, [len(p) < 2 for p in parts]] = -np.inf  # nor a user without a teacher input
    for n in (3, 10):
        model = make_llmesr(world, dataset, sim_users=n)
        expected = np.argsort(-sims, axis=1, kind="stable")[:, :n]
        np.testing.assert_array_equal(model.similar_users.numpy(), expected)
    # capped at the number of candidates (13 users have >= 2 training items)
    assert make_llmesr(world, dataset, sim_users=50).similar_users.shape == (N_USERS, 12)
    # teacher inputs: each user's training part without its last item, right-aligned
    model = make_llmesr(world, dataset)
    for u, part in enumerate(parts):
        row = model.teacher_inputs[u].numpy()
        window = part[:-1][-12:]
        assert (row[: 12 - len(window)] == 0).all() and (row[12 - len(window) :] == window).all()


def test_distillation_term_by_hand_for_two_users(world, dataset):
    model = make_llmesr(world, dataset, dropout=0.0, sim_users=3, alpha=0.3).train()
    users = torch.tensor([4, 9])
    train = [torch.from_numpy(p) for p in train_parts(dataset)]
    width = max(len(train[u]) for u in users.tolist()) - 1
    inputs = torch.zeros(2, width, dtype=torch.long)
    pos = torch.zeros(2, width, dtype=torch.long)
    for row, u in enumerate(users.tolist()):
        seq = train[u]
        inputs[row, width - len(seq) + 1 :] = seq[:-1]
        pos[row, width - len(seq) + 1 :] = seq[1:]
    neg = (pos * 7 + 3) % N_ITEMS * (pos != 0) + (pos != 0)

    def gradients(loss):
        model.zero_grad()
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    total, parts = model.training_loss(inputs, pos, neg, epoch=0, users=users)
    g_total = gradients(total)
    rec_only, rec_parts = model.training_loss(inputs, pos, neg, epoch=0)
    g_rec = gradients(rec_only)

    # by hand: student = the rows' own last states; teacher = mean of the retrieved users' last states
    student = model.user_embedding(inputs)
    teacher = torch.stack([
        model.user_embedding(model.teacher_inputs[model.similar_users[u]]).mean(0) for u in users.tolist()
    ]).detach()
    for u in users.tolist():  # the teacher inputs are the retrieved users' own training inputs
        for v in model.similar_users[u].tolist():
            assert model.teacher_inputs[v][model.teacher_inputs[v] != 0].tolist() == train[v][:-1].tolist()
    distill = ((student - teacher) ** 2).mean()
    assert parts["distill"] == pytest.approx(distill.item(), rel=1e-5)
    assert parts["rec"] == pytest.approx(rec_parts["rec"], rel=1e-6) and rec_parts["distill"] == 0.0
    assert parts["total"] == pytest.approx(parts["rec"] + 0.3 * parts["distill"], rel=1e-6)
    # the teacher is detached: the gradient is the recommendation one plus alpha * d MSE / d student only
    g_distill = gradients(0.3 * distill)
    for name, grad in g_total.items():
        expected = g_rec.get(name, torch.zeros_like(grad)) + g_distill.get(name, torch.zeros_like(grad))
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)


def test_llm_table_is_frozen_and_not_checkpointed(world, dataset):
    model = make_llmesr(world, dataset)
    assert not any(p is model.llm_table for p in model.parameters()) and not model.llm_table.requires_grad
    state = model.state_dict()
    assert not any(k.endswith(("llm_table", "similar_users", "teacher_inputs")) for k in state)
    assert any(k.startswith("adapter.") for k in state) and "id_embedding.weight" in state
    before = model.llm_table.clone()
    inputs, pos, neg = training_batch([11, 6, 3], 12)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    loss, _ = model.training_loss(inputs, pos, neg, epoch=0, users=torch.tensor([1, 2, 3]))
    loss.backward()
    optimiser.step()
    assert torch.equal(model.llm_table, before)
    again = make_llmesr(world, dataset, seed=5)
    again.load_state_dict(model.state_dict())
    ids = left_padded([12, 4], 12)
    with torch.no_grad():
        torch.testing.assert_close(again.eval().user_embedding(ids), model.eval().user_embedding(ids))
        torch.testing.assert_close(again.item_table(), model.item_table())


def test_collaborative_view_starts_from_the_pca_and_scores_both_views(world, dataset):
    from faerec.models.pca import pca_scores

    model = make_llmesr(world, dataset).eval()
    torch.testing.assert_close(model.id_embedding.weight.detach(), pca_scores(world[0], 16))
    assert model.semantic_backbone is None  # one encoder for both views, as the official code
    assert make_llmesr(world, dataset, shared_encoder=False).semantic_backbone is not None
    with torch.no_grad():
        table = model.item_table()
        ids = left_padded([12, 5, 0], 12)
        users = model.user_embedding(ids)
    assert table.shape == (N_ITEMS + 1, 32) and table[0].abs().sum() == 0
    assert users.shape == (3, 32) and users[2].abs().sum() == 0
    torch.testing.assert_close(table[1:, :16], model.id_embedding.weight[1:].detach())
    torch.testing.assert_close(table[1:, 16:], model.adapter(world[0][1:]).detach())


@pytest.mark.parametrize("backbone", ["sasrec", "lru"])
@pytest.mark.parametrize("cross_attention", [True, False])
def test_causal(world, dataset, backbone, cross_attention):
    """Changing the item at position t changes no state at positions < t (and does change position t); a
    user's embedding depends neither on the other rows nor on extra left padding."""
    model = make_llmesr(world, dataset, backbone=backbone, cross_attention=cross_attention).eval()
    ids = left_padded([12, 9, 4], 12, seed=3)
    t = 8
    changed = ids.clone()
    changed[:, t] = changed[:, t] % N_ITEMS + 1

    def grid(batch):
        layout = SeqLayout.from_ids(batch)
        out = torch.zeros(batch.numel(), 32)
        out[layout.flat_index] = model.features(batch)
        return out.view(*batch.shape, 32)

    with torch.no_grad():
        before, after = grid(ids), grid(changed)
        torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-5)
        assert (after[:, t] - before[:, t]).abs().max() > 1e-4
        torch.testing.assert_close(model.user_embedding(ids), before[:, -1], rtol=0, atol=1e-5)
        for row in range(ids.shape[0]):
            length = int((ids[row] != 0).sum())
            alone = model.user_embedding(ids[row : row + 1, 12 - length :])
            torch.testing.assert_close(alone[0], before[row, -1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("backbone", ["sasrec", "lru"])
def test_finite_training_loss_with_and_without_users(world, dataset, backbone):
    model = make_llmesr(world, dataset, backbone=backbone).train()
    inputs, pos, neg = training_batch([11, 0, 6, 1, 3], 12)
    for users in (None, torch.tensor([0, 5, 7, 7, 13])):
        model.zero_grad()
        loss, parts = model.training_loss(inputs, pos, neg, epoch=0, users=users)
        loss.backward()
        assert torch.isfinite(loss) and set(parts) == {"rec", "distill", "total"}
        assert (parts["distill"] > 0) == (users is not None)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        assert model.adapter[0].weight.grad.abs().sum() > 0


def test_options_are_checked_and_a_dataset_is_needed_to_distil(world, dataset):
    with pytest.raises(FaerecError, match="cross_heads"):
        ModelConfig.create(method="llmesr", hidden=16, cross_heads=3)
    with pytest.raises(FaerecError, match="sim_users"):
        ModelConfig.create(method="llmesr", sim_users=0)
    llm, counts = world
    cfg = ModelConfig.create(method="llmesr", hidden=16, heads=2, max_len=12)
    with pytest.raises(FaerecError, match="LLM item embeddings"):
        build_model(cfg, N_ITEMS, None, None, counts, dataset)
    model = build_model(cfg, N_ITEMS, llm, None, counts)  # no dataset: inference and users=None still work
    inputs, pos, neg = training_batch([5, 3], 12)
    assert torch.isfinite(model.training_loss(inputs, pos, neg, epoch=0)[0])
    with pytest.raises(FaerecError, match="without the dataset"):
        model.training_loss(inputs, pos, neg, epoch=0, users=torch.tensor([0, 1]))
