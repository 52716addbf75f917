"""Small formatting helpers shared by the report tables (plain Markdown, no Prefect)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table. ``align`` holds "l" or "r" per column (default: text left, numbers right)."""
    if align is None:
        align = ["r" if rows and all(_is_number(r[i]) for r in rows) else "l" for i in range(len(headers))]
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [_row(headers), _row(rule)]
    lines.extend(_row([cell(v) for v in r]) for r in rows)
    return "\n".join(lines)


def cell(value: Any) -> str:
    """Render one table cell: floats with 4 decimals, None as a dash, pipes escaped."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_metric(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def fmt_metric(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def fmt_percent(value: float | None) -> str:
    """A relative change as a signed percentage (the paper's "Impr." rows); None (undefined) as "n/a"."""
    if value is None:
        return "n/a"
    return f"{value * 100:+.2f}%"


def fmt_count(value: int | float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def relative_change(value: float | None, reference: float | None) -> float | None:
    """(value - reference) / reference; None where the reference is missing or zero."""
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / reference


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value is None
