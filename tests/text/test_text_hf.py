"""The hf: path with a tiny randomly initialised LLaMA and a tokenizer built offline."""

import numpy as np
import pytest
import torch

from faerec.text.embed import embed_dataset
from faerec.text.encoders import build_encoder
from faerec.text.encoders.hf import pool_hidden
from faerec.text.store import load_embeddings

TEXTS = ["lip balm", "the item has following features beauty lips skin care face", "red", "soft shiny red blue"]


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_never_changes_a_row(tiny_llama, pooling, side):
    batched = build_encoder(f"hf:{tiny_llama}?pooling={pooling}&padding_side={side}", batch_size=4, precision="fp32")
    alone = build_encoder(f"hf:{tiny_llama}?pooling={pooling}&padding_side={side}", batch_size=1, precision="fp32")
    np.testing.assert_allclose(batched.encode(TEXTS), alone.encode(TEXTS), atol=1e-5, rtol=0)


def test_pooling_matches_the_model_on_an_unpadded_input(tiny_llama):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_llama).eval()
    ids = AutoTokenizer.from_pretrained(tiny_llama)(TEXTS[1], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**ids).last_hidden_state[0]
    mean = build_encoder(f"hf:{tiny_llama}?pooling=mean", precision="fp32").encode([TEXTS[1]])[0]
    last = build_encoder(f"hf:{tiny_llama}?pooling=last", precision="fp32").encode([TEXTS[1]])[0]
    np.testing.assert_allclose(mean, hidden.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(last, hidden[-1].numpy(), atol=1e-5)


def test_pool_hidden_ignores_nan_in_padded_positions():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [float("nan"), float("nan")]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool_hidden(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool_hidden(hidden, mask, "last").tolist() == [[3.0, 4.0]]
    left = torch.tensor([[[float("nan")] * 2, [1.0, 2.0], [3.0, 4.0]]])
    assert pool_hidden(left, torch.tensor([[0, 1, 1]]), "last").tolist() == [[3.0, 4.0]]


def test_settings_that_change_vectors_change_the_fingerprint(tiny_llama):
    def fields(spec, precision="fp32"):
        return build_encoder(spec, precision=precision).fingerprint_fields()

    base = fields(f"hf:{tiny_llama}")
    assert base["precision"] == "fp32" and base["pooling"] == "mean" and base["max_tokens"] == 512
    assert fields(f"hf:{tiny_llama}?pooling=last") != base
    assert fields(f"hf:{tiny_llama}?max_tokens=8") != base
    assert fields(f"hf:{tiny_llama}", precision="bf16") != base
    assert fields(f"hf:{tiny_llama}?padding_side=left") == base  # exact padding: same vectors


def test_bf16_runs_and_returns_float32_close_to_fp32(tiny_llama):
    fp32 = build_encoder(f"hf:{tiny_llama}", precision="fp32").encode(TEXTS)
    bf16 = build_encoder(f"hf:{tiny_llama}", precision="bf16").encode(TEXTS)
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - fp32).max() < 0.1 * np.abs(fp32).max()


def test_embed_dataset_with_the_tiny_llama(tiny_llama, make_dataset, tmp_path):
    dataset = make_dataset(20)
    spec = f"hf:{tiny_llama}?pooling=last&max_tokens=48"
    summary = embed_dataset(dataset, spec, cache_dir=tmp_path / "cache", pca_dim=8, progress=False)
    assert summary["items"] == 20 and summary["dim"] == 32 and summary["embedded"] == 20
    table, fp = load_embeddings(dataset, spec)
    assert fp == summary["fingerprint"] and table.shape == (21, 32)
    assert not table[0].any() and np.isfinite(table).all()
    again = embed_dataset(dataset, spec, cache_dir=tmp_path / "cache", pca_dim=8, progress=False)
    assert again["embedded"] == 0 and again["fingerprint"] == fp
