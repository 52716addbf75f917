import polars as pl
import pytest
from text_fixtures import real_items

from faerec.errors import FaerecError
from faerec.text.prompts import PAPER_TEMPLATE, PromptTemplate, parse_template, render_prompts


def _items(**columns):
    return pl.DataFrame(columns)


def test_paper_template_with_every_field():
    items = _items(
        item_idx=[1], title=["Rose Lip Balm"], brand=["Acme"], price=["$4.99"],
        categories=[["Beauty", "Lips"]], description=["Soft  and\n shiny."],
    )
    (prompt,) = render_prompts(items, "beauty item")
    assert prompt == (
        "The beauty item has following attributes: name is Rose Lip Balm; brand is Acme; price is $4.99. "
        "The item has following features: Beauty, Lips. The item has following descriptions: Soft and shiny.."
    )


def test_missing_empty_and_absent_fields_render_unknown():
    items = pl.DataFrame(
        {"item_idx": [1, 2], "title": ["A", None], "brand": ["  ", "B"], "categories": [[], None]},
        schema={"item_idx": pl.Int32, "title": pl.Utf8, "brand": pl.Utf8, "categories": pl.List(pl.Utf8)},
    )
    first, second = render_prompts(items, "movie")
    assert first.startswith("The movie has following attributes: name is A; brand is unknown; price is unknown.")
    assert "features: unknown." in first and first.endswith("descriptions: unknown.")
    assert "name is unknown; brand is B" in second


def test_null_entries_inside_categories_are_skipped():
    items = pl.DataFrame({"categories": [["x", None, " ", "y"]]}, schema={"categories": pl.List(pl.Utf8)})
    assert render_prompts(items, "product", PromptTemplate("{categories}")) == ["x, y"]


def test_fields_are_truncated_to_the_limit():
    items = _items(title=["abcdefghij"], description=["0123456789" * 5])
    out = render_prompts(items, "product", PromptTemplate("{title}|{description}", field_chars=4))
    assert out == ["abcd|0123"]


def test_custom_template_and_literal_braces():
    items = _items(title=["T"], brand=[None])
    out = render_prompts(items, "business", PromptTemplate("{{json}} {domain}: {title} by {brand}"))
    assert out == ["{json} business: T by unknown"]


@pytest.mark.parametrize("bad", ["{nope}", "{title", "no fields at all", "x } y {title}"])
def test_bad_templates_are_clear_errors(bad):
    with pytest.raises(FaerecError):
        parse_template(bad)


def test_real_items_render_in_order_and_reflect_their_text():
    items = real_items(25)
    prompts = render_prompts(items, "product")
    assert len(prompts) == 25
    for row, prompt in zip(items.iter_rows(named=True), prompts, strict=True):
        assert prompt.startswith("The product has following attributes: name is ")
        if row["title"]:
            assert " ".join(row["title"].split())[:50] in prompt


def test_template_text_and_limit_are_in_the_fingerprint_fields():
    a = PromptTemplate().fingerprint_fields()
    b = PromptTemplate(field_chars=100).fingerprint_fields()
    assert a["template"] == PAPER_TEMPLATE and a != b
