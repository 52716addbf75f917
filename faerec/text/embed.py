"""Embed a processed dataset's items: prompts -> cache lookup -> encode only what is missing -> outputs.

Only prompts whose sha256 is absent from the encoder's cache namespace reach the encoder, so an unchanged
catalogue embeds nothing, three changed titles embed three, and reordering items embeds nothing. Missing
prompts are encoded longest first (as sentence-transformers orders a batch, so padding stays small) and saved
as a cache part every ``save_every`` items or ``save_seconds``, whichever comes first; a killed job therefore
resumes from its last part.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faerec.errors import FaerecError
from faerec.text import store
from faerec.text.cache import EmbeddingCache, prompt_keys
from faerec.text.encoders import Encoder, JobEstimate, build_encoder
from faerec.text.fingerprint import FileDigests, default_cache_dir, fingerprint, memo_path_for
from faerec.text.items import read_items
from faerec.text.locking import namespace_lock
from faerec.text.pca import DEFAULT_PCA_SEED
from faerec.text.prompts import DEFAULT_FIELD_CHARS, PAPER_TEMPLATE, PromptTemplate, render_prompts

log = logging.getLogger(__name__)



@dataclass
class SaveEvery:
    items: int = 4096
    seconds: float = 120.0


def embed_dataset(
    dataset_dir: str | Path,
    encoder: str = "minilm",
    *,
    pca_dim: int | None = 128,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    precision: str | None = None,
    template: str | None = None,
    max_cost: float | None = None,
    progress: bool = True,
    field_chars: int = DEFAULT_FIELD_CHARS,
    domain: str | None = None,
    pca_seed: int = DEFAULT_PCA_SEED,
    save_every: int = 4096,
    save_seconds: float = 120.0,
    secret_lookup=None,
) -> dict:
    """Embed every item of ``dataset_dir``; returns the one-line summary (docs/CONTRACT.md keys plus paths).

    Every row of items.parquet is embedded, the candidate-only items after the trained ones (the table has
    n_items + C rows); the PCA is fitted on the trained items only and applied to the candidates, so adding or
    changing candidates never changes a trained item's LLM or PCA row (the rows a run was trained with).

    ``max_cost`` (USD) stops an API job whose estimate exceeds it before anything is sent. ``pca_dim`` None or
    0 skips the PCA. ``precision`` is fp32 (default for sentence-transformers), bf16 or auto.
    """
    started = time.perf_counter()
    if save_every < 1:
        raise FaerecError(f"save_every must be positive, got {save_every}")
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    catalogue = read_items(dataset_dir, domain)
    prompt_spec = PromptTemplate(template or PAPER_TEMPLATE, field_chars)
    prompts = render_prompts(catalogue.items, catalogue.domain, prompt_spec)

    digests = FileDigests(memo_path_for(cache_root))
    enc = build_encoder(encoder, batch_size=batch_size, precision=precision, digests=digests)
    enc.secret_lookup = secret_lookup  # name -> secret, from an orchestrator (never logged or returned)
    digests.save()
    fields = {"encoder": enc.fingerprint_fields(), "prompt": prompt_spec.fingerprint_fields()}
    fp = fingerprint(enc.slug, fields)
    if pca_dim is not None and not 0 <= pca_dim <= catalogue.n_trained:
        raise FaerecError(f"PCA dimension must be between 0 and the number of items ({catalogue.n_trained}), "
                          f"got {pca_dim}")
    keys = prompt_keys(prompts)
    summary_extra: dict = {}
    # Shared lock from indexing the parts to reading them back: `cache compact` must not delete them meanwhile.
    with namespace_lock(cache_root / fp, exclusive=False):
        cache = EmbeddingCache(cache_root, fp, {"spec": enc.spec.canonical(), **fields})
        present = cache.contains(keys)
        missing_keys, missing_prompts = _unique_missing(keys, prompts, present)
        try:
            if missing_prompts:
                estimate = enc.estimate(missing_prompts)
                if estimate is not None:
                    _guard_cost(enc, estimate, max_cost, items=int((~present).sum()))
                    summary_extra = {"tokens": estimate.tokens, "estimated_cost_usd": estimate.cost_usd}
                _encode_missing(enc, cache, missing_keys, missing_prompts, progress,
                                SaveEvery(save_every, save_seconds))
            matrix = cache.gather(keys)
        finally:
            enc.close()

    outputs = _write_outputs(catalogue.path, enc, fp, fields, matrix, catalogue.stats, pca_dim, pca_seed,
                             catalogue.n_trained)
    embedded = int((~present).sum())
    return {
        "items": catalogue.n_items,  # every row: the trained items and the candidate-only items
        "candidate_items": catalogue.n_candidates,
        "candidates_embedded": int((~present[catalogue.n_trained:]).sum()),
        "embedded": embedded,
        "cached": catalogue.n_items - embedded,
        "dim": int(matrix.shape[1]),
        "seconds": round(time.perf_counter() - started, 3),
        "encoder": enc.spec.canonical(),
        "fingerprint": fp,
        "prompts_encoded": len(missing_prompts),
        **summary_extra,
        **outputs,
        "cache_dir": str(cache_root),
    }


def _unique_missing(keys: list[bytes], prompts: list[str], present: np.ndarray) -> tuple[list[bytes], list[str]]:
    """Distinct missing prompts, longest first (ties by key, so the order never depends on item order)."""
    seen: dict[bytes, str] = {}
    for i in np.flatnonzero(~present):
        seen.setdefault(keys[i], prompts[i])
    ordered = sorted(seen.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [k for k, _ in ordered], [p for _, p in ordered]


def _guard_cost(enc: Encoder, estimate: JobEstimate, max_cost: float | None, items: int) -> None:
    cost = "unknown price" if estimate.cost_usd is None else f"about ${estimate.cost_usd:,.4f}"
    log.warning(
        "%s: %s distinct prompts (%s items) to embed, %s tokens (%s), %s",
        enc.spec.canonical(), f"{estimate.prompts:,}", f"{items:,}", f"{estimate.tokens:,}",
        estimate.token_method, cost,
    )
    if max_cost is None:
        return
    if estimate.cost_usd is None:
        raise FaerecError("--max-cost is set but this model's price is unknown; add ?price_per_mtok=<usd> to the encoder")
    if estimate.cost_usd > max_cost:
        raise FaerecError(
            f"estimated cost ${estimate.cost_usd:,.4f} exceeds --max-cost ${max_cost:,.4f}; nothing was sent"
        )


def _encode_missing(
    enc: Encoder, cache: EmbeddingCache, keys: list[bytes], prompts: list[str], progress: bool, save: SaveEvery
) -> None:
    from tqdm.auto import tqdm

    buffered_keys: list[bytes] = []
    buffered: list[np.ndarray] = []
    last_save = time.monotonic()
    chunk = max(1, min(enc.chunk_items, save.items))
    bar = tqdm(total=len(prompts), unit="item", desc=f"embed {enc.slug}", disable=not progress, leave=False)

    def flush() -> None:
        nonlocal buffered_keys, buffered, last_save
        if buffered_keys:
            cache.append(buffered_keys, np.concatenate(buffered))
        buffered_keys, buffered, last_save = [], [], time.monotonic()

    try:
        for start in range(0, len(prompts), chunk):
            texts = prompts[start : start + chunk]
            vectors = enc.encode(texts)
            if vectors.shape[0] != len(texts):
                raise FaerecError(f"encoder {enc.spec.canonical()} returned {vectors.shape[0]} vectors for {len(texts)}")
            buffered_keys.extend(keys[start : start + chunk])
            buffered.append(vectors)
            bar.update(len(texts))
            if len(buffered_keys) >= save.items or time.monotonic() - last_save >= save.seconds:
                flush()
        flush()
    except BaseException:
        # Keep what is already encoded (an API failure, Ctrl-C) so the next run does not pay for it again.
        try:
            flush()
        except Exception:  # noqa: BLE001 - the original error matters more
            log.exception("could not save the partial batch")
        raise
    finally:
        bar.close()


def _write_outputs(
    dataset_dir: Path,
    enc: Encoder,
    fp: str,
    fields: dict,
    matrix: np.ndarray,
    stats: dict,
    pca_dim: int | None,
    pca_seed: int,
    n_trained: int | None = None,
) -> dict:
    """Write the item table and PCA unless the same content is already there (keeps re-runs fast).

    The PCA is fitted on the first ``n_trained`` rows (the trained items) and applied to the rest."""
    n_trained = matrix.shape[0] if n_trained is None else n_trained
    index = store.read_index(dataset_dir)
    digest = store.matrix_digest(matrix)
    entry = index["embeddings"].get(fp, {})
    path = store.embedding_file(dataset_dir, fp)
    meta = {"fingerprint": fp, "encoder": enc.spec.canonical()}
    if entry.get("digest") != digest or not path.is_file():
        store.write_item_table(path, matrix, meta)
        entry = {"pca": {}}
    entry.update(
        encoder=enc.spec.canonical(), fields=fields, dim=int(matrix.shape[1]), items=int(matrix.shape[0]),
        digest=digest, catalogue_fingerprint=stats.get("catalogue_fingerprint"), path=path.name,
        trained_items=n_trained, candidate_items=int(matrix.shape[0]) - n_trained,
        candidates_fingerprint=stats.get("candidates_fingerprint"),
    )
    entry.setdefault("pca", {})
    out = {"path": str(path), "pca_path": None}
    if pca_dim:
        pca_path = store.pca_file(dataset_dir, fp, pca_dim)
        recorded = entry["pca"].get(str(pca_dim), {})
        if recorded.get("seed") != pca_seed or not pca_path.is_file():
            from faerec.text.pca import fit_pca

            scores, kept = fit_pca(matrix, pca_dim, pca_seed, n_fit=n_trained)
            store.write_item_table(pca_path, scores, {**meta, "pca_dim": pca_dim, "pca_seed": pca_seed})
            recorded = {"path": pca_path.name, "seed": pca_seed, "explained_variance": round(kept, 6)}
            entry["pca"][str(pca_dim)] = recorded
        out.update(pca_path=str(pca_path), pca_explained_variance=recorded["explained_variance"])
    # Re-read just before writing: another encoder's job may have finished meanwhile; keep its entry.
    index = store.read_index(dataset_dir)
    index["embeddings"][fp] = entry
    index["encoders"][enc.spec.canonical()] = fp
    store.write_index(dataset_dir, index)
    return out
