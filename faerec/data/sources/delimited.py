"""Read delimited text dumps (MovieLens ``::`` .dat files and .csv files) with polars, block by block.

Every column is required. As for JSON lines, polars parses good input; a rejected block is walked line by
line to name the first bad line (wrong field count, a number that is not one, bad UTF-8).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from faerec.data.sources.lines import LineBlock, RawText
from faerec.errors import FaerecError

# A byte that never occurs in text dumps: multi-character separators such as "::" are rewritten to it,
# since polars splits on one byte only.
UNIT_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class DelimitedSpec:
    """columns: name -> polars type, in file order. header: the expected first line's fields, or None.

    encoding: the file's encoding (MovieLens 1M is latin-1); quoted: '"' quotes fields (csv files).
    """

    columns: Mapping[str, pl.DataType]
    separator: str
    header: Sequence[str] | None = None
    encoding: str = "utf-8"
    quoted: bool = False


def read_delimited(text: RawText, spec: DelimitedSpec, *, progress: bool = False, desc: str | None = None
                   ) -> pl.DataFrame:
    frames = []
    for index, block in enumerate(text.blocks(progress=progress, desc=desc)):
        if index == 0 and spec.header is not None:
            block = _strip_header(text, block, spec)
        frame = _parse_block(text, block, spec)
        if frame.height:
            frames.append(frame)
    if not frames:
        raise FaerecError("file has no data rows", path=text.label)
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def _strip_header(text: RawText, block: LineBlock, spec: DelimitedSpec) -> LineBlock:
    first, _, rest = block.data.partition(b"\n")
    found = _split(first.decode(spec.encoding, errors="replace").lstrip("\ufeff").rstrip("\r"), spec)
    if [f.strip() for f in found] != list(spec.header or ()):
        raise FaerecError(f"unexpected header {found}; expected {list(spec.header or ())}", path=text.label,
                          line=1)
    return LineBlock(block.first_line + 1, rest)


def _parse_block(text: RawText, block: LineBlock, spec: DelimitedSpec) -> pl.DataFrame:
    data = block.data
    if spec.encoding.lower().replace("-", "") not in ("utf8", "ascii"):
        data = data.decode(spec.encoding).encode("utf-8")
    separator = spec.separator
    if len(separator) > 1:
        data = data.replace(separator.encode("utf-8"), UNIT_SEPARATOR.encode())
        separator = UNIT_SEPARATOR
    try:
        frame = pl.read_csv(io.BytesIO(data), has_header=False, schema=dict(spec.columns), separator=separator,
                            quote_char='"' if spec.quoted else None)
    except pl.exceptions.PolarsError as exc:
        raise _locate(text, block, spec, exc) from None
    nulls = pl.any_horizontal(pl.all().is_null())
    if frame.select(nulls.any()).item():
        # Blank lines read as rows of nulls; anything else with a null is a bad line.
        problem = _locate(text, block, spec, None, only_if_found=True)
        if problem is not None:
            raise problem
        frame = frame.filter(~nulls)
    return frame


def _locate(text: RawText, block: LineBlock, spec: DelimitedSpec, cause: Exception | None,
            only_if_found: bool = False) -> FaerecError | None:
    for number, raw in block.lines():
        try:
            line = raw.decode(spec.encoding)
        except UnicodeDecodeError as exc:
            return FaerecError(f"invalid UTF-8 byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} "
                               "(the file must be UTF-8)", path=text.label, line=number)
        fields = _split(line, spec)
        if len(fields) != len(spec.columns):
            return FaerecError(f"expected {len(spec.columns)} fields separated by {spec.separator!r}, found "
                               f"{len(fields)}", path=text.label, line=number)
        for (name, dtype), value in zip(spec.columns.items(), fields, strict=True):
            if not _fits(value, dtype):
                return FaerecError(f"field {name!r} should be {_describe(dtype)}, got {value!r}",
                                   path=text.label, line=number)
    if only_if_found:
        return None
    last = block.first_line + block.data.count(b"\n")
    detail = str(cause).strip().splitlines()[0] if cause is not None else "unknown problem"
    return FaerecError(f"cannot parse lines {block.first_line}-{last} ({detail})", path=text.label)


def _split(line: str, spec: DelimitedSpec) -> list[str]:
    if spec.quoted:
        return next(csv.reader([line], delimiter=spec.separator), [])
    return line.split(spec.separator)


def _fits(value: str, dtype: pl.DataType) -> bool:
    value = value.strip()
    try:
        if dtype == pl.Int64:
            int(value)
        elif dtype == pl.Float64:
            float(value)
        else:
            return value != ""
    except ValueError:
        return False
    return True


def _describe(dtype: pl.DataType) -> str:
    if dtype == pl.Int64:
        return "an integer"
    return "a number" if dtype == pl.Float64 else "non-empty text"
