"""Read JSON-lines dumps with polars, block by block, keeping only the fields a reader asks for.

Good input never leaves polars. When polars rejects a block (bad JSON, bad UTF-8, a wrong type) or a required
field is missing, the block is walked again line by line in Python to name the first bad line: a clear
message costs nothing on good input.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from faerec.data.sources.lines import LineBlock, RawText
from faerec.errors import FaerecError

RecordCheck = Callable[[dict], str | None]  # returns a complaint about one parsed line, or None


@dataclass
class NdjsonSpec:
    """What to read from each line.

    fields: name -> polars type (fields absent from a line are null; unlisted fields are ignored).
    required: fields that must be present, non-null and non-empty on every line.
    per_block: applied to each parsed block (rename, convert, filter) so only what is kept stays in memory.
    check: extra per-line validation, used only to name the line when ``per_block`` fails.
    """

    fields: Mapping[str, pl.DataType]
    required: Sequence[str] = ()
    per_block: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    check: RecordCheck | None = None


def read_ndjson(text: RawText, spec: NdjsonSpec, *, progress: bool = False, desc: str | None = None
                ) -> pl.DataFrame:
    """Parse every block of ``text`` with ``spec``; concatenate in file order."""
    frames = [_parse_block(text, block, spec) for block in text.blocks(progress=progress, desc=desc)]
    frames = [f for f in frames if f is not None]
    if not frames:
        raise FaerecError("file has no JSON lines", path=text.label)
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def _parse_block(text: RawText, block: LineBlock, spec: NdjsonSpec) -> pl.DataFrame | None:
    if not block.data.strip():
        return None
    try:
        frame = pl.read_ndjson(io.BytesIO(block.data), schema=dict(spec.fields))
    except pl.exceptions.PolarsError as exc:
        raise locate_bad_line(text, block, spec, exc) from None
    if spec.required:
        missing = pl.any_horizontal(_is_missing(frame, name) for name in spec.required)
        if frame.select(missing.any()).item():
            raise locate_bad_line(text, block, spec, None)
    if spec.per_block is None:
        return frame
    try:
        return spec.per_block(frame)
    except pl.exceptions.PolarsError as exc:
        raise locate_bad_line(text, block, spec, exc) from None


def _is_missing(frame: pl.DataFrame, name: str) -> pl.Expr:
    col = pl.col(name)
    if frame.schema[name] == pl.Utf8:
        return col.is_null() | (col.str.strip_chars() == "")
    return col.is_null()


def locate_bad_line(text: RawText, block: LineBlock, spec: NdjsonSpec, cause: Exception | None) -> FaerecError:
    """The FaerecError for the first line of ``block`` that breaks ``spec`` (checked in plain Python)."""
    for number, raw in block.lines():
        problem = _line_problem(raw, spec)
        if problem:
            return FaerecError(problem, path=text.label, line=number)
    last = block.first_line + block.data.count(b"\n")
    detail = str(cause).strip().splitlines()[0] if cause is not None else "unknown problem"
    return FaerecError(f"cannot parse lines {block.first_line}-{last} ({detail})", path=text.label)


def _line_problem(raw: bytes, spec: NdjsonSpec) -> str | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (f"invalid UTF-8 byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} "
                "(the file must be UTF-8)")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"malformed JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    for name in spec.required:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"missing required field {name!r}"
    for name, dtype in spec.fields.items():
        value = record.get(name)
        if value is not None and not _fits(value, dtype):
            return f"field {name!r} should be {_describe(dtype)}, got {type(value).__name__} {_short(value)}"
    if spec.check is not None:
        return spec.check(record)
    return None


def _fits(value: object, dtype: pl.DataType) -> bool:
    """Whether polars reads ``value`` as ``dtype`` (mirrors what it rejects, nothing stricter)."""
    if dtype == pl.Int64:
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if dtype == pl.Float64:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(dtype, pl.List):
        return isinstance(value, list)
    if isinstance(dtype, pl.Struct):
        return isinstance(value, dict)
    return True  # text: polars keeps numbers and nested values as their JSON text


def _describe(dtype: pl.DataType) -> str:
    if dtype == pl.Int64:
        return "an integer"
    if dtype == pl.Float64:
        return "a number"
    if isinstance(dtype, pl.List):
        return "a list"
    if isinstance(dtype, pl.Struct):
        return "an object"
    return "text"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
