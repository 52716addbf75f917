"""The one home for content hashes: canonical JSON of settings, files, arrays and frames (sha256)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl


def canonical_json(fields: Any) -> str:
    """Sorted keys, no whitespace; values JSON cannot hold are written as their str()."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(fields: Any, length: int = 16) -> str:
    """sha256 of ``canonical_json(fields)``, as ``length`` hex digits."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:length]


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def array_digest(matrix: np.ndarray) -> str:
    """sha256 of an array's shape and bytes (C order; the dtype is the caller's to fix)."""
    matrix = np.ascontiguousarray(matrix)
    return hashlib.sha256(str(matrix.shape).encode() + matrix.tobytes()).hexdigest()


def frame_digest(frame: pl.DataFrame, length: int = 16) -> str:
    """sha256 of a frame's rows as header-less CSV, streamed in slices."""
    h = hashlib.sha256()
    for batch in frame.iter_slices(200_000):
        h.update(batch.write_csv(include_header=False).encode())
    return h.hexdigest()[:length]
