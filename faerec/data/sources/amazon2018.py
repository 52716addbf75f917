"""Amazon review data 2018 (Ni, Li & McAuley): ``amazon2018:<Category>`` and ``amazon2018:<Category>:full``.

Files (``$FAEREC_AMAZON2018_BASE_URL``, default the public UCSD mirror the dataset page links to):
  categoryFilesSmall/<Category>_5.json.gz   the 5-core review file (default variant)
  categoryFiles/<Category>.json.gz          every review (variant ``full``)
  metaFiles2/meta_<Category>.json.gz        product metadata, JSON lines
Reviews as in 2014 (reviewerID, asin, unixReviewTime in seconds). Metadata: title, brand, category (list),
description (a list of paragraphs, joined with spaces), price text such as "$14.99" or "$5.99 - $12.99".
Some metadata rows carry page markup instead of a price; such prices become null and are counted in
``skipped["unreadable_prices"]``.
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from faerec.data.sources import fields
from faerec.data.sources.amazon import AmazonSource, keep_reviewed, read_classic_reviews
from faerec.data.sources.base import RemoteFile
from faerec.data.sources.lines import RawText
from faerec.data.sources.ndjson import NdjsonSpec, read_ndjson

CATEGORIES_2018 = (
    "AMAZON_FASHION", "All_Beauty", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Books",
    "CDs_and_Vinyl", "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music",
    "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food", "Home_and_Kitchen", "Industrial_and_Scientific",
    "Kindle_Store", "Luxury_Beauty", "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments",
    "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Prime_Pantry", "Software",
    "Sports_and_Outdoors", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games",
)

# "$14.99", "$1,299.00", "$5.99 - $12.99"; anything else in the field is markup or noise.
PRICE_PATTERN = r"^\$\s?\d[\d,]*(\.\d+)?(\s*-\s*\$\s?\d[\d,]*(\.\d+)?)?$"

META_FIELDS = {
    "asin": pl.Utf8, "title": pl.Utf8, "brand": pl.Utf8, "category": pl.List(pl.Utf8),
    "description": pl.List(pl.Utf8), "price": pl.Utf8,
}


class Amazon2018(AmazonSource):
    prefix: ClassVar[str] = "amazon2018"
    usage: ClassVar[str] = "amazon2018:<Category>[:full]"
    CATEGORIES = CATEGORIES_2018
    ENV_VAR = "FAEREC_AMAZON2018_BASE_URL"
    DEFAULT_BASE_URL = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2"

    def remote_files(self) -> tuple[RemoteFile, RemoteFile]:
        root = self.base_url()
        if self.variant == "5core":
            reviews = RemoteFile(f"{root}/categoryFilesSmall/{self.category}_5.json.gz",
                                 f"{self.category}_5.json.gz")
        else:
            reviews = RemoteFile(f"{root}/categoryFiles/{self.category}.json.gz", f"{self.category}.json.gz")
        meta = f"meta_{self.category}.json.gz"
        return reviews, RemoteFile(f"{root}/metaFiles2/{meta}", meta)

    def read_reviews(self, text: RawText, progress: bool) -> pl.DataFrame:
        return read_classic_reviews(text, progress)

    def read_metadata(self, text: RawText, reviewed: pl.Series, skipped: dict[str, int],
                      progress: bool) -> pl.DataFrame:
        skipped.setdefault("unreadable_prices", 0)

        def tidy(frame: pl.DataFrame) -> pl.DataFrame:
            frame = keep_reviewed(frame.rename({"asin": "item_id"}), reviewed, skipped)
            price = pl.col("price").str.strip_chars()
            readable = price.str.contains(PRICE_PATTERN)
            skipped["unreadable_prices"] += frame.select(
                (pl.col("price").is_not_null() & (price.str.len_chars() > 0) & ~readable).sum()).item()
            return frame.select(
                pl.col("item_id"),
                fields.text("title"),
                fields.text("brand"),
                fields.text_list("category").alias("categories"),
                fields.joined("description"),
                pl.when(readable).then(price).otherwise(None).alias("price"),
            )

        spec = NdjsonSpec(fields=META_FIELDS, required=("asin",), per_block=tidy)
        return read_ndjson(text, spec, progress=progress, desc=f"reading {text.path.name}")
