"""Reading raw files safely: existence, gzip integrity, UTF-8, and line numbers for every complaint.

Polars parses the happy path at full speed. Only when it fails do we walk the text line by line, to find and
name the first bad line: a clear message costs nothing on good input.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import polars as pl

from faerec.errors import FaerecError


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if it ends in .gz. Missing, empty or truncated files are clear errors."""
    if not path.exists():
        raise FaerecError("file does not exist", path=path)
    if path.stat().st_size == 0:
        raise FaerecError("file is empty", path=path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise FaerecError(f"corrupt or truncated gzip file ({exc})", path=path) from None
    if not raw.strip():
        raise FaerecError("file has no data", path=path)
    return raw


def check_utf8(raw: bytes, path: Path) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FaerecError(f"invalid UTF-8 byte {raw[exc.start:exc.start + 1]!r} (the file must be UTF-8)",
                          path=path, line=line) from None


def read_csv(path: Path, required: dict[str, pl.DataType]) -> pl.DataFrame:
    """Read a CSV with a header; ``required`` columns are cast strictly, the first bad row is named."""
    raw = read_bytes(path)
    check_utf8(raw, path)
    try:
        frame = pl.read_csv(io.BytesIO(raw), infer_schema=False)  # every column as text: we cast ourselves
    except pl.exceptions.PolarsError as exc:
        raise FaerecError(f"cannot parse CSV: {_first_line(exc)}", path=path) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FaerecError(f"missing required column(s) {missing}; header has {frame.columns}", path=path, line=1)
    out = []
    for name, dtype in required.items():
        col = frame[name]
        if dtype == pl.Int64:
            # Accept integer text and integral floats ("1.4e9"), nothing else.
            as_float = col.str.strip_chars().cast(pl.Float64, strict=False)
            bad = (as_float.is_null() | (as_float != as_float.floor())) if len(col) else col.is_null()
            if bad.any():
                row = int(bad.arg_max())
                raise FaerecError(f"column '{name}' must be an integer, got {col[row]!r}", path=path,
                                  line=row + 2)
            out.append(as_float.cast(pl.Int64).alias(name))
        else:
            nulls = col.is_null() | (col.str.len_bytes() == 0)
            if nulls.any():
                row = int(nulls.arg_max())
                raise FaerecError(f"column '{name}' is empty", path=path, line=row + 2)
            out.append(col.cast(dtype))
    return pl.DataFrame(out)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
