"""Per-dataset outputs aligned to item_idx, and the loaders the trainer uses.

``<dataset>/embeddings/``:
  <fp>.parquet           item_idx int32 (1..n), embedding fixed_size_list<float32>[dim]
  <fp>.pca-<dim>.parquet the same layout, PCA scores of the rows above (fitted on the catalogue's items, seeded)
  index.json             {"encoders": {spec: fp}, "embeddings": {fp: {dim, items, digest, pca: {dim: {...}}}}}
``load_embeddings`` / ``load_pca`` return float32 [n_items + 1, dim] with row 0 (padding) all zeros: the
trained items. The tables also hold the candidate-only items after them (rows n_items + 1 .. n_items + C,
faerec.data.prepare), which ``rows="all"`` returns too; a table written before the dataset had candidates
(n_items + 1 rows) still serves the trained rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from faerec.data import folder
from faerec.errors import FaerecError
from faerec.hashing import array_digest
from faerec.io import atomic_path, write_json
from faerec.text.cache import vectors_of
from faerec.text.encoders.base import EncoderSpec

FOLDER = "embeddings"
INDEX = "index.json"
ROWS = ("trained", "all")


def embeddings_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / FOLDER


def embedding_file(dataset_dir: str | Path, fingerprint: str) -> Path:
    return embeddings_dir(dataset_dir) / f"{fingerprint}.parquet"


def pca_file(dataset_dir: str | Path, fingerprint: str, dim: int) -> Path:
    return embeddings_dir(dataset_dir) / f"{fingerprint}.pca-{dim}.parquet"


def matrix_digest(matrix: np.ndarray) -> str:
    return array_digest(np.ascontiguousarray(matrix, dtype=np.float32))


def canonical_spec(encoder: str) -> str:
    return EncoderSpec.parse(encoder).canonical()


# -- index -----------------------------------------------------------------------------------------------------
def read_index(dataset_dir: str | Path) -> dict:
    path = embeddings_dir(dataset_dir) / INDEX
    if not path.is_file():
        return {"encoders": {}, "embeddings": {}}
    try:
        index = json.loads(path.read_text())
    except ValueError as exc:
        raise FaerecError(f"invalid JSON ({exc}); delete it and re-run `faerec embed`", path=path) from None
    index.setdefault("encoders", {})
    index.setdefault("embeddings", {})
    return index


def write_index(dataset_dir: str | Path, index: dict) -> None:
    write_json(embeddings_dir(dataset_dir) / INDEX, index)


# -- writing ---------------------------------------------------------------------------------------------------
def write_item_table(path: Path, matrix: np.ndarray, metadata: dict[str, str]) -> None:
    """Rows 1..n of an item table (no padding row) as item_idx + fixed-size float32 list, atomically."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    table = pa.table(
        {
            "item_idx": pa.array(np.arange(1, matrix.shape[0] + 1, dtype=np.int32)),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1]),
        }
    ).replace_schema_metadata({f"faerec.{k}": str(v) for k, v in metadata.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="none", use_dictionary=False, write_statistics=False)


def read_item_table(path: Path) -> np.ndarray:
    """float32 [n + 1, dim], row 0 zeros; checks that item_idx runs 1..n in order."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise FaerecError(f"unreadable Parquet file ({exc})", path=path) from None
    idx = table.column("item_idx").to_numpy()
    if not np.array_equal(idx, np.arange(1, len(idx) + 1)):
        raise FaerecError("item_idx does not run 1..n in order", path=path)
    vectors = vectors_of(table.column("embedding"))
    out = np.zeros((vectors.shape[0] + 1, vectors.shape[1]), dtype=np.float32)
    out[1:] = vectors
    return out


# -- loading ---------------------------------------------------------------------------------------------------
def _resolve(dataset_dir: Path, encoder: str, fingerprint: str | None, what: str) -> tuple[dict, str, dict]:
    index = read_index(dataset_dir)
    fp = fingerprint or index["encoders"].get(canonical_spec(encoder))
    if fp is None and encoder in index["embeddings"]:  # a fingerprint passed as the encoder
        fp = encoder
    entry = index["embeddings"].get(fp) if fp else None
    if entry is None:
        raise FaerecError(
            f"no {what} for encoder {encoder!r}; run: faerec embed {dataset_dir} --encoder {encoder}",
            path=embeddings_dir(dataset_dir),
        )
    return index, fp, entry


def _check_items(dataset_dir: Path, table: np.ndarray, path: Path, encoder: str, rows: str = "trained") -> np.ndarray:
    """The requested rows of ``table`` after checking its row count against stats.json: n_items + C + 1
    (trained and candidate items), or n_items + 1 (embedded before the candidates existed; trained rows only)."""
    if rows not in ROWS:
        raise ValueError(f"rows must be one of {ROWS}, got {rows!r}")
    stats_file = dataset_dir / folder.STATS
    if not stats_file.is_file():
        return table
    stats = json.loads(stats_file.read_text())
    n_items = stats.get("items")
    if n_items is None:
        return table
    n_items, n_candidates = int(n_items), int(stats.get("candidate_items", 0))
    held = table.shape[0] - 1
    rerun = f"run: faerec embed {dataset_dir} --encoder {encoder}"
    if held not in (n_items, n_items + n_candidates):
        extra = f" and {n_candidates} candidate items" if n_candidates else ""
        raise FaerecError(f"holds {held} items but the dataset has {n_items}{extra}; {rerun}", path=path)
    if rows == "trained":
        return table[: n_items + 1]
    if held != n_items + n_candidates:
        raise FaerecError(f"holds the {n_items} trained items but not the dataset's {n_candidates} candidate "
                          f"items (embedded before they were added); {rerun}", path=path)
    return table


def load_embeddings(
    dataset_dir: str | Path, encoder: str = "minilm", *, fingerprint: str | None = None, rows: str = "trained"
) -> tuple[np.ndarray, str]:
    """The LLM item table, float32 [n_items + 1, dim] (row 0 zeros), and its fingerprint; with ``rows="all"``
    [n_items + C + 1, dim], the candidate-only items included."""
    dataset_dir = Path(dataset_dir)
    _, fp, _ = _resolve(dataset_dir, encoder, fingerprint, "embeddings")
    path = embedding_file(dataset_dir, fp)
    if not path.is_file():
        raise FaerecError(f"missing; run: faerec embed {dataset_dir} --encoder {encoder}", path=path)
    table = _check_items(dataset_dir, read_item_table(path), path, encoder, rows)
    return table, fp


def load_pca(
    dataset_dir: str | Path, dim: int = 128, encoder: str = "minilm", *, fingerprint: str | None = None,
    rows: str = "trained",
) -> np.ndarray:
    """PCA scores of the LLM item table, float32 [n_items + 1, dim] (row 0 zeros); ``rows="all"`` as for
    ``load_embeddings``. The PCA was fitted on the trained items and applied to the candidates."""
    dataset_dir = Path(dataset_dir)
    _, fp, entry = _resolve(dataset_dir, encoder, fingerprint, "embeddings")
    path = pca_file(dataset_dir, fp, dim)
    if str(dim) not in entry.get("pca", {}) or not path.is_file():
        raise FaerecError(
            f"no {dim}-dimensional PCA; run: faerec embed {dataset_dir} --encoder {encoder} --pca-dim {dim}",
            path=path,
        )
    table = read_item_table(path)
    if table.shape[1] != dim:
        raise FaerecError(f"has {table.shape[1]} dimensions, expected {dim}", path=path)
    return _check_items(dataset_dir, table, path, encoder, rows)
