"""Amazon Reviews 2023 (Hou et al., McAuley lab): ``amazon2023:<Category>``.

Files (``$FAEREC_AMAZON2023_BASE_URL``, default the public UCSD mirror the dataset page links to):
  review_categories/<Category>.jsonl.gz        every review (the dump has no 5-core review file; ``prepare``
                                               applies the k-core)
  meta_categories/meta_<Category>.jsonl.gz     item metadata
Items are keyed by ``parent_asin`` (variants of one product share it), as the dataset's authors recommend.
Reviews: user_id, parent_asin -> item_id, timestamp kept in **milliseconds** as given (dividing would
create ties that the source does not have). Metadata: title; store -> brand; categories (list, or
``[main_category]`` when the list is empty); description paragraphs joined (the ``features`` bullet list
when there is no description); price as text ("None" and empty -> null).
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from faerec.data.sources import fields
from faerec.data.sources.amazon import AmazonSource, keep_reviewed
from faerec.data.sources.base import RemoteFile
from faerec.data.sources.lines import RawText
from faerec.data.sources.ndjson import NdjsonSpec, read_ndjson

CATEGORIES_2023 = (
    "All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Baby_Products",
    "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food",
    "Handmade_Products", "Health_and_Household", "Health_and_Personal_Care", "Home_and_Kitchen",
    "Industrial_and_Scientific", "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV",
    "Musical_Instruments", "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Software",
    "Sports_and_Outdoors", "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games",
    "Unknown",
)

META_FIELDS = {
    "parent_asin": pl.Utf8, "title": pl.Utf8, "store": pl.Utf8, "main_category": pl.Utf8,
    "categories": pl.List(pl.Utf8), "description": pl.List(pl.Utf8), "features": pl.List(pl.Utf8),
    "price": pl.Utf8,
}


class Amazon2023(AmazonSource):
    prefix: ClassVar[str] = "amazon2023"
    usage: ClassVar[str] = "amazon2023:<Category>"
    CATEGORIES = CATEGORIES_2023
    VARIANTS = ("full",)
    ENV_VAR = "FAEREC_AMAZON2023_BASE_URL"
    DEFAULT_BASE_URL = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023/raw"

    def remote_files(self) -> tuple[RemoteFile, RemoteFile]:
        root = self.base_url()
        reviews = f"{self.category}.jsonl.gz"
        meta = f"meta_{self.category}.jsonl.gz"
        return (RemoteFile(f"{root}/review_categories/{reviews}", reviews),
                RemoteFile(f"{root}/meta_categories/{meta}", meta))

    def read_reviews(self, text: RawText, progress: bool) -> pl.DataFrame:
        spec = NdjsonSpec(
            fields={"user_id": pl.Utf8, "parent_asin": pl.Utf8, "timestamp": pl.Int64},
            required=("user_id", "parent_asin", "timestamp"),
            per_block=lambda f: f.select("user_id", pl.col("parent_asin").alias("item_id"), "timestamp"),
        )
        return read_ndjson(text, spec, progress=progress, desc=f"reading {text.path.name}")

    def read_metadata(self, text: RawText, reviewed: pl.Series, skipped: dict[str, int],
                      progress: bool) -> pl.DataFrame:
        def tidy(frame: pl.DataFrame) -> pl.DataFrame:
            frame = keep_reviewed(frame.rename({"parent_asin": "item_id"}), reviewed, skipped)
            frame = frame.with_columns(
                fields.text("title"), fields.text("store"), fields.text("main_category"),
                fields.text_list("categories"), fields.joined("description"), fields.joined("features"),
                fields.text("price"),
            )
            return frame.select(
                "item_id",
                "title",
                pl.col("store").alias("brand"),
                pl.coalesce(
                    pl.col("categories"),
                    pl.when(pl.col("main_category").is_not_null()).then(pl.concat_list("main_category")),
                ).alias("categories"),
                pl.coalesce("description", "features").alias("description"),
                pl.when(pl.col("price").str.to_lowercase().is_in(["none", "null", "nan", "-", "—"]))
                .then(None).otherwise(pl.col("price")).alias("price"),
            )

        spec = NdjsonSpec(fields=META_FIELDS, required=("parent_asin",), per_block=tidy)
        return read_ndjson(text, spec, progress=progress, desc=f"reading {text.path.name}")
