"""Polars expressions that bring raw text fields to the catalogue's form: trimmed, and null when empty.

Prompts render a null field as "unknown", so an empty string or an empty list must become null here.
"""

from __future__ import annotations

import polars as pl


def text(name: str) -> pl.Expr:
    """Trimmed text; empty -> null."""
    value = pl.col(name).str.strip_chars()
    return pl.when(value.str.len_chars() > 0).then(value).otherwise(None).alias(name)


def text_list(name: str) -> pl.Expr:
    """A list of trimmed, non-empty, distinct strings in their first order; empty -> null."""
    values = (
        pl.col(name)
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element().str.len_chars() > 0))
        .list.unique(maintain_order=True)
    )
    return pl.when(values.list.len() > 0).then(values).otherwise(None).alias(name)


def joined(name: str, separator: str = " ") -> pl.Expr:
    """A list of text pieces (e.g. description paragraphs) joined into one text; empty -> null."""
    value = (
        pl.col(name)
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element().str.len_chars() > 0))
        .list.join(separator)
    )
    return pl.when(value.str.len_chars() > 0).then(value).otherwise(None).alias(name)


def split_list(name: str, separator: str = ",") -> pl.Expr:
    """A separated string ("Food, Bars, Pubs") as a clean list; empty -> null."""
    values = pl.col(name).str.split(separator).list.eval(pl.element().str.strip_chars())
    values = values.list.eval(pl.element().filter(pl.element().str.len_chars() > 0)).list.unique(
        maintain_order=True)
    return pl.when(values.list.len() > 0).then(values).otherwise(None).alias(name)
