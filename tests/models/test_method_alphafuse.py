"""AlphaFuse: the SVD decomposition against numpy, frozen semantic coordinates + IDs learned only in the null
space, the cover switch, options and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models_fixtures import N_ITEMS, left_padded, make_model, training_batch

from faerec.errors import FaerecError
from faerec.models import ModelConfig, build_model
from faerec.models.methods.alphafuse import decompose, semantic_table


def numpy_reference(llm: torch.Tensor, hidden: int, scale: float, standardize: bool) -> tuple:
    """The official recipe in numpy: np.cov of the scaled items, np.linalg.svd, project (and whiten)."""
    items = llm[1:].double().numpy() * scale
    mean = items.mean(0)
    u, s, _ = np.linalg.svd(np.cov(items - mean, rowvar=False), full_matrices=False)
    projection = u[:, :hidden] * (np.sqrt(1 / s[:hidden]) if standardize else 1.0)
    return u, s, (items - mean) @ projection


def tiny_table() -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(9, 5, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.1])
    table[0] = 0
    return table


@pytest.mark.parametrize("standardize", [True, False])
def test_decomposition_matches_numpy_svd_on_a_tiny_table(standardize):
    llm = tiny_table()  # 8 items, 5 dimensions
    u, s, coords = numpy_reference(llm, 4, 40.0, standardize)
    parts = decompose(llm, 40.0)
    np.testing.assert_allclose(parts.variances.numpy(), s, rtol=1e-10)
    signs = np.sign((parts.basis.numpy() * u).sum(0))  # numpy's signs are arbitrary, ours fixed
    assert set(signs.tolist()) <= {-1.0, 1.0}
    np.testing.assert_allclose(parts.basis.numpy(), u * signs, atol=1e-10)
    table = semantic_table(llm, 4, 2, standardize, False, 40.0)
    assert table[0].abs().sum() == 0
    np.testing.assert_allclose(table[1:].numpy(), coords * signs[:4], rtol=1e-5, atol=1e-5)
    if standardize:  # whitened: zero mean, unit (unbiased) variance per coordinate
        np.testing.assert_allclose(table[1:].double().var(0).numpy(), np.ones(4), rtol=1e-5)
        np.testing.assert_allclose(table[1:].double().mean(0).numpy(), np.zeros(4), atol=1e-5)


def test_language_scale_cancels_only_under_standardisation():
    llm = tiny_table()
    torch.testing.assert_close(semantic_table(llm, 4, 2, True, False, 1.0), semantic_table(llm, 4, 2, True, False, 40.0))
    torch.testing.assert_close(semantic_table(llm, 4, 2, False, False, 40.0),
                               40.0 * semantic_table(llm, 4, 2, False, False, 1.0))


def test_item_table_is_frozen_semantics_plus_ids_in_the_null_coordinates(world):
    model = make_model(world, method="alphafuse")
    emb = model.embedder
    assert emb.null_dim == 8  # null_dim=0 -> hidden // 2
    assert tuple(emb.id_embedding.weight.shape) == (N_ITEMS + 1, 8)
    with torch.no_grad():
        table = model.item_table()
    torch.testing.assert_close(table[:, :8], emb.semantic_table[:, :8], rtol=0, atol=0)
    torch.testing.assert_close(table[:, 8:], emb.semantic_table[:, 8:] + emb.id_embedding.weight, rtol=0, atol=0)
    assert table[0].abs().sum() == 0
    # official ID init: N(0, 1)
    assert emb.id_embedding.weight[1:].std().item() == pytest.approx(1.0, abs=0.15)


def test_an_optimizer_step_changes_only_the_null_space(world):
    model = make_model(world, method="alphafuse")
    with torch.no_grad():
        before = model.item_table().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    inputs, pos, neg = training_batch([11, 7, 3], 12)
    for _ in range(2):
        optimizer.zero_grad()
        loss, _ = model.training_loss(inputs, pos, neg, epoch=0)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model.item_table()
    torch.testing.assert_close(after[:, :8], before[:, :8], rtol=0, atol=0)  # semantic coordinates: unchanged
    touched = torch.unique(torch.cat([inputs[inputs != 0], pos[pos != 0], neg[neg != 0]]))
    assert (after[touched, 8:] - before[touched, 8:]).abs().sum(1).min() > 0  # null space: learned
    assert after[0].abs().sum() == 0
    # in the original LLM space the learned part is orthogonal to the semantic-rich principal directions
    llm, _ = world
    parts = decompose(llm)
    whiten = parts.variances[:16].sqrt()
    learned = (after - before).double()[:, :16] * whiten  # back to un-whitened principal coordinates
    in_llm_space = learned @ parts.basis[:, :16].T
    assert (in_llm_space @ parts.basis[:, :8]).abs().max() < 1e-6


def test_cover_replaces_the_null_coordinates_by_the_ids(world):
    model = make_model(world, method="alphafuse", cover=True)
    emb = model.embedder
    assert emb.semantic_table[:, 8:].abs().sum() == 0
    plain = make_model(world, method="alphafuse")
    torch.testing.assert_close(emb.semantic_table[:, :8], plain.embedder.semantic_table[:, :8])
    with torch.no_grad():
        torch.testing.assert_close(model.item_table()[:, 8:], emb.id_embedding.weight, rtol=0, atol=0)


def test_zero_id_init_starts_from_the_semantic_table(world):
    model = make_model(world, method="alphafuse", id_init_std=0.0, null_dim=4)
    assert model.embedder.null_dim == 4
    with torch.no_grad():
        torch.testing.assert_close(model.item_table(), model.embedder.semantic_table, rtol=0, atol=0)


def test_options_are_checked(world):
    llm, counts = world
    for bad in ({"null_dim": 16}, {"null_dim": -1}, {"language_scale": 0.0}, {"id_init_std": -1.0}):
        with pytest.raises(FaerecError, match="alphafuse"):
            ModelConfig.create(method="alphafuse", hidden=16, **bad)
    with pytest.raises(FaerecError, match="exceeds the LLM dimension"):
        build_model(ModelConfig.create(method="alphafuse", hidden=32, max_len=12), N_ITEMS, llm, None, counts)
    few = llm.clone()
    few[1:] = few[1] * torch.arange(1, N_ITEMS + 1)[:, None]  # rank 1
    with pytest.raises(FaerecError, match="rank below"):
        build_model(ModelConfig.create(method="alphafuse", hidden=16, max_len=12), N_ITEMS, few, None, counts)
    defaults = ModelConfig.create(method="alphafuse").method_options
    assert (defaults.null_dims(128), defaults.standardize, defaults.cover, defaults.language_scale,
            defaults.id_init_std) == (64, True, False, 40.0, 1.0)


def test_checkpoint_leaves_out_the_frozen_table_and_round_trips(world):
    model = make_model(world, method="alphafuse")
    state = model.state_dict()
    assert not any("semantic" in key or "llm" in key for key in state)
    again = make_model(world, seed=3, method="alphafuse")
    again.load_state_dict(state)
    ids = left_padded([12, 5], 12)
    with torch.no_grad():
        torch.testing.assert_close(again.eval().user_embedding(ids), model.eval().user_embedding(ids))
        torch.testing.assert_close(again.item_table(), model.item_table())
