"""Item prompts: a template with {field} placeholders rendered over the whole item table at once (polars).

The default is the paper's template (section 4.1). ``{domain}`` is the dataset's noun for an item ("beauty
item", "product", "business", "movie"), so the default reads "The beauty item has following attributes: ...".
A missing or empty field renders as "unknown". Each field is cut to ``field_chars`` characters; that limit and
the template text are part of the embedding fingerprint, so changing either never reuses stale vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from faerec.errors import FaerecError

PAPER_TEMPLATE = (
    "The {domain} has following attributes: name is {title}; brand is {brand}; price is {price}. "
    "The item has following features: {categories}. The item has following descriptions: {description}."
)
MISSING = "unknown"
DEFAULT_FIELD_CHARS = 2000
TEXT_FIELDS = ("item_id", "title", "brand", "price", "description")
LIST_FIELDS = ("categories",)
PLACEHOLDERS = ("domain", *TEXT_FIELDS, *LIST_FIELDS)

# "{{" and "}}" are literal braces; "{name}" is a placeholder.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True)
class PromptTemplate:
    text: str = PAPER_TEMPLATE
    field_chars: int = DEFAULT_FIELD_CHARS

    def __post_init__(self) -> None:
        if self.field_chars < 1:
            raise FaerecError(f"field_chars must be positive, got {self.field_chars}")
        parse_template(self.text)  # fail early on a bad template

    def fingerprint_fields(self) -> dict:
        return {"template": self.text, "field_chars": self.field_chars, "missing": MISSING}


def parse_template(text: str) -> list[tuple[str, str]]:
    """Split a template into ("literal", text) and ("field", name) pieces."""
    pieces: list[tuple[str, str]] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        name = match.group(1)
        if name is None:
            raise FaerecError(f"template has an unmatched '{token}' at character {match.start()}: {text!r}")
        name = name.strip()
        if name not in PLACEHOLDERS:
            raise FaerecError(f"template placeholder {{{name}}} is unknown; use any of {list(PLACEHOLDERS)}")
        pieces.append(("literal", "".join(literal)))
        literal = []
        pieces.append(("field", name))
    literal.append(text[pos:])
    pieces.append(("literal", "".join(literal)))
    pieces = [p for p in pieces if p != ("literal", "")]
    if not any(kind == "field" for kind, _ in pieces):
        raise FaerecError(f"template uses no item field (e.g. {{title}}): {text!r}")
    return pieces


def _clean(expr: pl.Expr, limit: int) -> pl.Expr:
    """Collapse whitespace, cut to ``limit`` characters; null or empty becomes MISSING."""
    text = expr.cast(pl.Utf8).str.replace_all(r"\s+", " ").str.strip_chars()
    text = text.str.slice(0, limit).str.strip_chars()
    return pl.when(text.is_null() | (text == "")).then(pl.lit(MISSING)).otherwise(text)


def _field_expr(name: str, domain: str, limit: int, schema: pl.Schema) -> pl.Expr:
    if name == "domain":
        return pl.lit(domain)
    if name not in schema:
        return pl.lit(MISSING)
    if name in LIST_FIELDS:
        column = pl.col(name)
        if not isinstance(schema[name], pl.List):
            column = pl.concat_list(column.cast(pl.Utf8))
        cleaned = column.list.eval(
            pl.element().cast(pl.Utf8).str.replace_all(r"\s+", " ").str.strip_chars()
        ).list.eval(pl.element().filter(pl.element().is_not_null() & (pl.element() != "")))
        return _clean(cleaned.list.join(", "), limit)
    return _clean(pl.col(name), limit)


def render_prompts(items: pl.DataFrame, domain: str, template: PromptTemplate | None = None) -> list[str]:
    """One prompt per row of ``items`` (same order). Columns absent from ``items`` render as "unknown"."""
    template = template or PromptTemplate()
    parts = [
        pl.lit(value) if kind == "literal" else _field_expr(value, domain, template.field_chars, items.schema)
        for kind, value in parse_template(template.text)
    ]
    rendered = items.select(pl.concat_str(parts, separator="").alias("prompt"))
    return rendered.get_column("prompt").to_list()
