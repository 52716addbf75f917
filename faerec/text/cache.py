"""Content-addressed embedding cache: sha256(prompt) -> vector, one namespace per encoder fingerprint.

Layout: ``<cache_dir>/<fingerprint>/meta.json`` and append-only ``part-<time>-<pid>-<rand>.parquet`` files
(columns key: binary(32), embedding: fixed_size_list<float32>[dim]). Every part is written atomically, so a
killed job leaves only complete parts and the next run embeds only what they lack. Several processes can
append to one namespace at once (part names never collide). A key found in several parts (two jobs raced, or
a compaction was interrupted) resolves to its oldest copy. ``compact`` merges a namespace into one part.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from faerec.errors import FaerecError
from faerec.io import atomic_path, write_json

log = logging.getLogger(__name__)

KEY_BYTES = 32
PART_GLOB = "part-*.parquet"


def prompt_keys(prompts: Sequence[str]) -> list[bytes]:
    return [hashlib.sha256(p.encode("utf-8")).digest() for p in prompts]


def part_table(keys: Sequence[bytes], vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(keys):
        raise ValueError(f"{len(keys)} keys but vectors of shape {vectors.shape}")
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return pa.table(
        {
            "key": pa.array(keys, type=pa.binary(KEY_BYTES)),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
        }
    )


def vectors_of(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed_size_list<float32> column as a float32 [rows, dim] array (bit-exact)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = array.type.list_size
    flat = array.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, dim)


def write_part_file(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        # Float vectors barely compress; skipping it keeps writes and reads fast.
        pq.write_table(table, tmp, compression="none", use_dictionary=False, write_statistics=False)


class EmbeddingCache:
    def __init__(self, root: str | Path, fingerprint: str, fields: dict | None = None) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.dir = self.root / fingerprint
        self.fields = fields or {}
        self.dim: int | None = None
        self._parts: list[Path] = []
        self._index = pl.DataFrame(schema={"key": pl.Binary, "part": pl.UInt32, "row": pl.UInt32})
        self._memory: dict[int, np.ndarray] = {}  # parts written by this process, kept to skip re-reading
        self._load_index()

    # -- reading -------------------------------------------------------------------------------------------
    def _load_index(self) -> None:
        frames = []
        for part_id, path in enumerate(sorted(self.dir.glob(PART_GLOB))):
            table = self._read(path, ["key"])
            self._check_dim(path, pq.read_schema(path).field("embedding").type.list_size)
            frames.append(
                pl.DataFrame(
                    {
                        "key": table.column("key").cast(pa.binary()),
                        "part": pl.Series(np.full(table.num_rows, part_id, dtype=np.uint32)),
                        "row": pl.Series(np.arange(table.num_rows, dtype=np.uint32)),
                    }
                )
            )
            self._parts.append(path)
        if frames:
            self._index = pl.concat(frames).unique(subset="key", keep="first", maintain_order=True)

    def _read(self, path: Path, columns: list[str]) -> pa.Table:
        try:
            return pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise FaerecError(
                f"unreadable cache part ({exc}); it only holds cached vectors: delete it and re-run", path=path
            ) from None

    def _check_dim(self, path: Path, dim: int) -> None:
        if self.dim is None:
            self.dim = dim
        elif dim != self.dim:
            raise FaerecError(f"cache part has dimension {dim}, others {self.dim}", path=path)

    def __len__(self) -> int:
        return self._index.height

    @property
    def parts(self) -> list[Path]:
        return list(self._parts)

    def contains(self, keys: Sequence[bytes]) -> np.ndarray:
        """Boolean mask: which keys already have a vector."""
        wanted = pl.DataFrame({"key": pl.Series(list(keys), dtype=pl.Binary)})
        return wanted.select(pl.col("key").is_in(self._index.get_column("key").implode())).to_series().to_numpy()

    def gather(self, keys: Sequence[bytes]) -> np.ndarray:
        """float32 [len(keys), dim]; every key must be present."""
        wanted = pl.DataFrame(
            {"key": pl.Series(list(keys), dtype=pl.Binary), "pos": np.arange(len(keys), dtype=np.int64)}
        )
        located = wanted.join(self._index, on="key", how="left", maintain_order="left")
        if located.get_column("part").null_count():
            raise FaerecError(f"{located.get_column('part').null_count()} prompts missing from the cache", path=self.dir)
        out = np.empty((len(keys), self.dim or 0), dtype=np.float32)
        for (part_id,), group in located.group_by("part"):
            vectors = self._memory.get(part_id)
            if vectors is None:
                path = self._parts[part_id]
                vectors = vectors_of(self._read(path, ["embedding"]).column("embedding"))
            out[group.get_column("pos").to_numpy()] = vectors[group.get_column("row").to_numpy()]
        return out

    # -- writing -------------------------------------------------------------------------------------------
    def append(self, keys: Sequence[bytes], vectors: np.ndarray) -> Path:
        """Write one new part atomically and index it."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._check_dim(self.dir, vectors.shape[1])
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "meta.json").exists():
            write_json(self.dir / "meta.json", {"fingerprint": self.fingerprint, "dim": self.dim, **self.fields})
        path = self.dir / f"part-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.parquet"
        write_part_file(path, part_table(keys, vectors))
        part_id = len(self._parts)
        self._parts.append(path)
        self._memory[part_id] = vectors
        new = pl.DataFrame(
            {
                "key": pl.Series(list(keys), dtype=pl.Binary),
                "part": pl.Series(np.full(len(keys), part_id, dtype=np.uint32)),
                "row": pl.Series(np.arange(len(keys), dtype=np.uint32)),
            }
        )
        self._index = pl.concat([self._index, new]).unique(subset="key", keep="first", maintain_order=True)
        return path
