"""Yelp Open Dataset: ``yelp:/path/to/folder`` (Yelp's licence requires a manual download, so nothing is
fetched: download it from https://www.yelp.com/dataset, extract the archive, and name the folder).

Files looked for in the folder (plain JSON lines, or the same gzip-compressed):
  yelp_academic_dataset_review.json (or review.json)       user_id, business_id, date "YYYY-MM-DD HH:MM:SS"
  yelp_academic_dataset_business.json (or business.json)   business_id, name, city, state, categories, ...
Every review is an interaction (ratings are not thresholded); date -> timestamp in seconds (UTC-naive).
Items: name -> title; categories ("Food, Bars" text, or a list in older releases) -> list; "City, ST" ->
description (where a business is tends to matter for a visit); attributes.RestaurantsPriceRange2 (1-4) ->
price "$".."$$$$"; brand stays null.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar

import polars as pl

from faerec.data.catalogue import RawCatalogue
from faerec.data.sources import fields
from faerec.data.sources.base import Source, safe_stem
from faerec.data.sources.lines import RawText
from faerec.data.sources.ndjson import NdjsonSpec, read_ndjson
from faerec.errors import FaerecError

REVIEW_FILES = ("yelp_academic_dataset_review.json", "review.json", "yelp_academic_dataset_review.json.gz")
BUSINESS_FILES = ("yelp_academic_dataset_business.json", "business.json",
                  "yelp_academic_dataset_business.json.gz")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
PRICE_SIGNS = {"1": "$", "2": "$$", "3": "$$$", "4": "$$$$"}


class YelpSource(Source):
    prefix: ClassVar[str] = "yelp"
    usage: ClassVar[str] = "yelp:/path/to/yelp_dataset_folder"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.exists():
            raise FaerecError("Yelp folder does not exist (download the dataset from "
                              "https://www.yelp.com/dataset and extract it there)", path=self.folder)
        if not self.folder.is_dir():
            raise FaerecError("expected the folder holding the extracted Yelp JSON files", path=self.folder)
        self.name = f"yelp:{self.folder.resolve()}"

    @classmethod
    def from_spec(cls, argument: str) -> YelpSource:
        if not argument.strip():
            raise FaerecError(f"the Yelp source needs its folder: {cls.usage} (Yelp's licence requires a "
                              "manual download from https://www.yelp.com/dataset)")
        return cls(argument.strip())

    def dataset_stem(self) -> str:
        stem = safe_stem(self.folder.resolve().name)
        return stem if stem.lower().startswith("yelp") else f"yelp-{stem}"

    def load(self, raw_dir: Path | None = None, progress: bool = True) -> RawCatalogue:
        review_path = self._find(REVIEW_FILES)
        business_path = self._find(BUSINESS_FILES)
        interactions = read_ndjson(RawText(review_path), _REVIEW_SPEC, progress=progress,
                                   desc=f"reading {review_path.name}")
        items = read_ndjson(RawText(business_path), _BUSINESS_SPEC, progress=progress,
                            desc=f"reading {business_path.name}")
        return RawCatalogue(source=self.name, interactions=interactions, items=items, domain="business",
                            files=[str(review_path), str(business_path)])

    def _find(self, names: tuple[str, ...]) -> Path:
        for name in names:
            if (self.folder / name).is_file():
                return self.folder / name
        raise FaerecError(f"no {' or '.join(names[:2])} in the Yelp folder (extract the dataset's archive "
                          "there first)", path=self.folder)


def _check_date(record: dict) -> str | None:
    value = record.get("date")
    try:
        datetime.strptime(str(value).strip(), DATE_FORMAT)
    except ValueError:
        return f"field 'date' should look like 2018-07-07 22:09:11, got {value!r}"
    return None


def _reviews(frame: pl.DataFrame) -> pl.DataFrame:
    when = pl.col("date").str.strip_chars().str.to_datetime(DATE_FORMAT, strict=True)
    return frame.select("user_id", pl.col("business_id").alias("item_id"), when.dt.epoch("s").alias("timestamp"))


def _businesses(frame: pl.DataFrame) -> pl.DataFrame:
    categories = pl.col("categories").str.strip_chars()
    # Older releases hold a JSON list (polars gives its text); category names never contain commas or quotes.
    categories = pl.when(categories.str.starts_with("[")).then(
        categories.str.strip_chars("[]").str.replace_all('"', "", literal=True)).otherwise(categories)
    place = pl.concat_str([fields.text("city"), fields.text("state")], separator=", ", ignore_nulls=True)
    price = pl.col("attributes").struct.field("RestaurantsPriceRange2").str.strip_chars()
    return frame.with_columns(categories.alias("categories")).select(
        pl.col("business_id").alias("item_id"),
        fields.text("name").alias("title"),
        pl.lit(None, dtype=pl.Utf8).alias("brand"),
        fields.split_list("categories", ","),
        pl.when(place.str.len_chars() > 0).then(place).otherwise(None).alias("description"),
        price.replace_strict(PRICE_SIGNS, default=None, return_dtype=pl.Utf8).alias("price"),
    )


_REVIEW_SPEC = NdjsonSpec(
    fields={"user_id": pl.Utf8, "business_id": pl.Utf8, "date": pl.Utf8},
    required=("user_id", "business_id", "date"),
    per_block=_reviews,
    check=_check_date,
)
_BUSINESS_SPEC = NdjsonSpec(
    fields={"business_id": pl.Utf8, "name": pl.Utf8, "city": pl.Utf8, "state": pl.Utf8, "categories": pl.Utf8,
            "attributes": pl.Struct({"RestaurantsPriceRange2": pl.Utf8})},
    required=("business_id",),
    per_block=_businesses,
)
