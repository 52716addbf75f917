"""Candidate-only items on the text side: `faerec embed` embeds them after the trained items, the PCA is fitted
on the trained items only (their PCA rows never change when candidates come or go), and the loaders serve the
trained rows by default and every row on request, checking the row count against stats.json."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from text_fixtures import real_items, write_dataset

from faerec.errors import FaerecError
from faerec.text.embed import embed_dataset
from faerec.text.encoders import build_encoder
from faerec.text.items import read_items
from faerec.text.pca import fit_pca
from faerec.text.prompts import PromptTemplate, render_prompts
from faerec.text.store import load_embeddings, load_pca, read_index

N_TRAINED, N_CANDIDATES, PCA_DIM = 20, 6, 4


def with_candidates(folder, n_trained: int, n_candidates: int):
    """A dataset folder whose items.parquet holds n_trained trained items and n_candidates candidates."""
    items = real_items(n_trained + n_candidates).with_columns((pl.col("item_idx") > n_trained).alias("candidate"))
    write_dataset(folder, items)
    (folder / "stats.json").write_text(json.dumps({"dataset_id": folder.name, "items": n_trained,
                                                   "candidate_items": n_candidates, "domain": "product"}))
    return folder


@pytest.fixture(scope="module")
def embedded(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("candidates")
    spec = f"hf:{tiny_llama}?pooling=mean&max_tokens=48"
    plain = write_dataset(root / "plain", real_items(N_TRAINED))
    grown = with_candidates(root / "grown", N_TRAINED, N_CANDIDATES)
    cache = root / "cache"
    first = embed_dataset(plain, spec, cache_dir=cache, pca_dim=PCA_DIM, progress=False)
    second = embed_dataset(grown, spec, cache_dir=cache, pca_dim=PCA_DIM, progress=False)
    return spec, plain, grown, first, second


def test_embed_covers_the_candidates_and_encodes_only_the_new_prompts(embedded):
    spec, plain, grown, first, second = embedded
    assert first["items"] == N_TRAINED and first["candidate_items"] == 0 and first["embedded"] == N_TRAINED
    assert second["items"] == N_TRAINED + N_CANDIDATES and second["candidate_items"] == N_CANDIDATES
    assert second["embedded"] == second["candidates_embedded"] == N_CANDIDATES  # the trained prompts are cached
    entry = read_index(grown)["embeddings"][second["fingerprint"]]
    assert (entry["items"], entry["trained_items"], entry["candidate_items"]) == (26, N_TRAINED, N_CANDIDATES)

    trained, _ = load_embeddings(grown, spec)
    everything, _ = load_embeddings(grown, spec, rows="all")
    assert trained.shape[0] == N_TRAINED + 1 and everything.shape[0] == N_TRAINED + N_CANDIDATES + 1
    np.testing.assert_array_equal(trained, load_embeddings(plain, spec)[0])
    np.testing.assert_array_equal(everything[: N_TRAINED + 1], trained)
    catalogue = read_items(grown)
    assert (catalogue.n_trained, catalogue.n_candidates) == (N_TRAINED, N_CANDIDATES)
    prompts = render_prompts(catalogue.items, "product", PromptTemplate())[N_TRAINED:]
    np.testing.assert_allclose(everything[N_TRAINED + 1:], build_encoder(spec).encode(prompts), atol=1e-5)


def test_the_pca_is_fitted_on_the_trained_items_and_applied_to_the_candidates(embedded):
    from sklearn.decomposition import PCA

    spec, plain, grown, _, _ = embedded
    # the trained items' PCA rows are exactly those of the catalogue without candidates
    np.testing.assert_array_equal(load_pca(grown, PCA_DIM, spec), load_pca(plain, PCA_DIM, spec))
    everything, _ = load_embeddings(grown, spec, rows="all")
    pca = PCA(n_components=PCA_DIM, svd_solver="covariance_eigh", random_state=2024).fit(
        everything[1 : N_TRAINED + 1].astype(np.float64))
    candidates = load_pca(grown, PCA_DIM, spec, rows="all")[N_TRAINED + 1:]
    np.testing.assert_allclose(candidates, pca.transform(everything[N_TRAINED + 1:].astype(np.float64)),
                               rtol=1e-4, atol=1e-5)


def test_fit_pca_on_the_first_rows_leaves_them_unchanged():
    vectors = np.random.default_rng(3).normal(size=(30, 12)).astype(np.float32)
    alone, kept = fit_pca(vectors[:20], 5, 2024)
    both, kept_both = fit_pca(vectors, 5, 2024, n_fit=20)
    np.testing.assert_array_equal(both[:20], alone)
    assert both.shape == (30, 5) and kept_both == kept
    with pytest.raises(FaerecError, match="between 1 and"):
        fit_pca(vectors, 13, 2024, n_fit=20)


def test_a_table_embedded_before_the_candidates_serves_the_trained_rows_only(embedded, tmp_path):
    spec, plain, _, _, _ = embedded
    import shutil

    stale = with_candidates(tmp_path / "stale", N_TRAINED, N_CANDIDATES)
    shutil.copytree(plain / "embeddings", stale / "embeddings")  # 20 rows: no candidates yet
    np.testing.assert_array_equal(load_embeddings(stale, spec)[0], load_embeddings(plain, spec)[0])
    assert load_pca(stale, PCA_DIM, spec).shape == (N_TRAINED + 1, PCA_DIM)
    with pytest.raises(FaerecError, match=r"\(embedded before they were added\); run: faerec embed"):
        load_embeddings(stale, spec, rows="all")
    (stale / "stats.json").write_text(json.dumps({"items": N_TRAINED - 1, "candidate_items": N_CANDIDATES}))
    with pytest.raises(FaerecError, match="holds 20 items but the dataset has 19 and 6 candidate items"):
        load_embeddings(stale, spec)


def test_read_items_counts_trained_and_candidate_rows(tmp_path):
    folder = with_candidates(tmp_path / "ds", 8, 3)
    catalogue = read_items(folder)
    assert (catalogue.n_items, catalogue.n_trained, catalogue.n_candidates) == (11, 8, 3)
    (folder / "stats.json").write_text(json.dumps({"items": 8, "candidate_items": 2}))
    with pytest.raises(FaerecError, match="says 8 items and 2 candidate items, items.parquet has 11"):
        read_items(folder)
