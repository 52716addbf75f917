"""LLMInit: the ID table starts from the PCA (or a scaled random projection) of the LLM table, then the model is
the base method and keeps nothing of the LLM side."""

from __future__ import annotations

import pytest
import torch
from models_fixtures import N_ITEMS, left_padded, make_model, training_batch

from faerec.errors import FaerecError
from faerec.models import ModelConfig, build_model
from faerec.models.methods.base import IdItemEmbedder
from faerec.models.pca import pca_scores


def test_id_table_equals_the_pca_at_init(world):
    llm, counts = world
    pca = torch.randn(N_ITEMS + 1, 16)
    pca[0] = 0
    model = build_model(ModelConfig.create(method="llminit", hidden=16, max_len=12), N_ITEMS, llm, pca, counts)
    assert torch.equal(model.item_table().detach(), pca)
    # without a precomputed table the method runs the PCA itself
    model = make_model(world, method="llminit")
    torch.testing.assert_close(model.item_table().detach(), pca_scores(llm, 16), rtol=0, atol=0)


def test_projection_option_is_a_seeded_centred_projection_at_the_id_init_scale(world):
    llm, _ = world
    table = make_model(world, method="llminit", projection=True).item_table().detach()
    assert table[0].abs().sum() == 0
    rows = table[1:].double()
    assert rows.std().item() == pytest.approx(0.02, rel=1e-5)  # cfg.init_std
    torch.testing.assert_close(rows.mean(0), torch.zeros(16, dtype=torch.float64), rtol=0, atol=1e-7)
    # a linear map of the centred LLM rows: least squares reproduces it exactly
    centred = llm[1:].double() - llm[1:].double().mean(0)
    weight = torch.linalg.lstsq(centred, rows).solution
    torch.testing.assert_close(centred @ weight, rows, rtol=0, atol=1e-7)  # float32 rounding
    assert not torch.allclose(table, pca_scores(llm, 16))
    again = make_model(world, method="llminit", projection=True).item_table().detach()
    other = make_model(world, seed=1, method="llminit", projection=True).item_table().detach()
    assert torch.equal(table, again) and not torch.equal(table, other)


def test_nothing_of_the_llm_side_is_kept(world):
    llm, counts = world
    model = make_model(world, method="llminit")
    assert type(model.embedder) is IdItemEmbedder
    base = make_model(world, method="base")
    assert [name for name, _ in model.named_buffers()] == [name for name, _ in base.named_buffers()]
    assert set(model.state_dict()) == set(base.state_dict())
    # the same weights behind a model built from another LLM table: identical outputs
    other_llm = torch.nn.functional.normalize(torch.randn_like(llm), dim=-1)
    other_llm[0] = 0
    other = build_model(ModelConfig.create(method="llminit", hidden=16, layers=2, heads=2, max_len=12, dropout=0.2),
                        N_ITEMS, other_llm, None, counts)
    other.load_state_dict(model.state_dict())
    ids = left_padded([12, 5, 1], 12)
    model.eval()
    other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other.item_table(), model.item_table(), rtol=0, atol=0)
        torch.testing.assert_close(other.user_embedding(ids), model.user_embedding(ids), rtol=0, atol=0)


def test_training_is_the_base_method_from_the_llm_start(world):
    model = make_model(world, method="llminit")
    base = make_model(world, method="base")
    base.load_state_dict(model.state_dict())
    inputs, pos, neg = training_batch([11, 7, 3], 12)
    torch.manual_seed(4)
    loss, parts = model.training_loss(inputs, pos, neg, epoch=0)
    torch.manual_seed(4)
    base_loss, base_parts = base.training_loss(inputs, pos, neg, epoch=0)
    assert loss.item() == base_loss.item() and parts == base_parts
    assert set(parts) == {"rec", "total"}
    loss.backward()
    weight = model.embedder.id_embedding.weight
    assert weight.grad[0].abs().sum() == 0 and weight.grad[1:].abs().sum() > 0


def test_llminit_needs_the_llm_table(world):
    _, counts = world
    with pytest.raises(FaerecError, match="LLM item embeddings"):
        build_model(ModelConfig.create(method="llminit", hidden=16), N_ITEMS, None, None, counts)
