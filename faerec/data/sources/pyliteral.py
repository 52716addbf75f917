"""The Amazon 2014 metadata: one Python dict literal per line (not JSON), parsed safely and quickly.

``ast.literal_eval`` only builds literals (never runs code), but it costs ~0.3 ms for a typical line. Two
things keep it fast:
* a line whose leading ``{'asin': '...'`` names an item no review uses is skipped unparsed (a 5-core file
  uses a few percent of its category's metadata);
* the ``'related'`` entry (up to hundreds of co-purchase ids, most of a line, never used) is cut out first, by
  a pattern that matches only ``, 'related': {'key': ['ID', ...], ...}`` with plain alphanumeric ids (text
  fields never hold that syntax in practice). If the cut line does not parse, the whole line is parsed.

Strings were written from Python 2 byte strings, so UTF-8 text appears as latin-1 escapes ("Ã©" for "é");
such strings are repaired when, and only when, they round-trip as valid UTF-8.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import polars as pl

from faerec.data.catalogue import ITEM_SCHEMA
from faerec.data.sources.lines import RawText
from faerec.errors import FaerecError

_LEADING_ASIN = re.compile(rb"\{'asin': '([^'\\]+)'")
_IDS = r"\[(?:'[0-9A-Za-z]+'(?:, '[0-9A-Za-z]+')*)?\]"
_ENTRY = rf"'[a-z_]+': {_IDS}"
_RELATED = re.compile(rf", 'related': \{{(?:{_ENTRY}(?:, {_ENTRY})*)?\}}")
_TEXT_FIELDS = ("title", "brand", "description")


def read_literal_metadata(text: RawText, wanted: set[str] | None, *, progress: bool = False
                          ) -> tuple[pl.DataFrame, int]:
    """(items with ITEM_SCHEMA columns, number of lines skipped because their item is not ``wanted``)."""
    wanted_bytes = None if wanted is None else {w.encode("utf-8") for w in wanted}
    rows: list[tuple] = []
    not_wanted = 0
    for number, line in _lines(text, progress):
        if wanted_bytes is not None:
            lead = _LEADING_ASIN.match(line)
            if lead is not None and lead.group(1) not in wanted_bytes:
                not_wanted += 1
                continue
        record = _parse(line, text, number)
        asin = record.get("asin")
        if not isinstance(asin, str) or not asin.strip():
            raise FaerecError("missing required field 'asin'", path=text.label, line=number)
        if wanted is not None and asin not in wanted:
            not_wanted += 1
            continue
        rows.append(_row(record, text, number))
    if not rows and not not_wanted:
        raise FaerecError("file has no metadata lines", path=text.label)
    return pl.DataFrame(rows, schema=ITEM_SCHEMA, orient="row"), not_wanted


def _lines(text: RawText, progress: bool) -> Iterator[tuple[int, bytes]]:
    for block in text.blocks(progress=progress, desc=f"reading {text.path.name}"):
        yield from block.lines()


def _parse(line: bytes, text: RawText, number: int) -> dict:
    try:
        source = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FaerecError(f"invalid UTF-8 byte {line[exc.start:exc.start + 1]!r} at column {exc.start + 1}",
                          path=text.label, line=number) from None
    short, cut = _RELATED.subn("", source, count=1)
    if cut:
        try:
            record = ast.literal_eval(short)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            record = None  # let the whole line say what is wrong
        if isinstance(record, dict):
            return record
    try:
        record = ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise FaerecError(f"not a Python dict literal ({detail})", path=text.label, line=number) from None
    if not isinstance(record, dict):
        raise FaerecError(f"expected a dict literal, got {type(record).__name__}", path=text.label, line=number)
    return record


def _row(record: dict, text: RawText, number: int) -> tuple:
    values = {"item_id": record["asin"].strip()}
    for name in _TEXT_FIELDS:
        value = record.get(name)
        if value is not None and not isinstance(value, (str, int, float)):
            raise FaerecError(f"field {name!r} should be text, got {type(value).__name__}", path=text.label,
                              line=number)
        values[name] = _clean(str(value)) if value is not None else None
    values["price"] = _price(record.get("price"))
    values["categories"] = _categories(record.get("categories"), text, number)
    return tuple(values[name] for name in ITEM_SCHEMA)


def _price(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return f"{value:.2f}"
    return _clean(str(value))


def _categories(value: object, text: RawText, number: int) -> list[str] | None:
    """A list of category paths ([["Beauty", "Makeup"], ["Beauty", "Nails"]]) flattened, first order kept."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise FaerecError(f"field 'categories' should be a list, got {type(value).__name__}", path=text.label,
                          line=number)
    flat: dict[str, None] = {}
    for path in value:
        for name in path if isinstance(path, list) else [path]:
            cleaned = _clean(str(name))
            if cleaned:
                flat.setdefault(cleaned, None)
    return list(flat) or None


def _clean(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not value.isascii():
        try:
            value = value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return value
