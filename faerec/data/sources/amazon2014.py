"""Amazon review data 2014 (McAuley et al.): ``amazon2014:<Category>`` and ``amazon2014:<Category>:full``.

Files (``$FAEREC_AMAZON2014_BASE_URL``, default the public SNAP mirror the dataset page links to):
  reviews_<Category>_5.json.gz   the 5-core review file (default variant)
  reviews_<Category>.json.gz     every review (variant ``full``)
  meta_<Category>.json.gz        product metadata, one Python dict literal per line (parsed safely)
Reviews are JSON lines: reviewerID -> user_id, asin -> item_id, unixReviewTime (seconds) -> timestamp.
Metadata: title, brand, description as given; price (a number) as "12.99"; categories (a list of category
paths) flattened to one list of distinct names in first order.
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from faerec.data.sources.amazon import AmazonSource, read_classic_reviews
from faerec.data.sources.base import RemoteFile
from faerec.data.sources.lines import RawText
from faerec.data.sources.pyliteral import read_literal_metadata

CATEGORIES_2014 = (
    "Books", "Electronics", "Movies_and_TV", "CDs_and_Vinyl", "Clothing_Shoes_and_Jewelry",
    "Home_and_Kitchen", "Kindle_Store", "Sports_and_Outdoors", "Cell_Phones_and_Accessories",
    "Health_and_Personal_Care", "Toys_and_Games", "Video_Games", "Tools_and_Home_Improvement", "Beauty",
    "Apps_for_Android", "Office_Products", "Pet_Supplies", "Automotive", "Grocery_and_Gourmet_Food",
    "Patio_Lawn_and_Garden", "Baby", "Digital_Music", "Musical_Instruments", "Amazon_Instant_Video",
)


class Amazon2014(AmazonSource):
    prefix: ClassVar[str] = "amazon2014"
    usage: ClassVar[str] = "amazon2014:<Category>[:full]"
    CATEGORIES = CATEGORIES_2014
    ENV_VAR = "FAEREC_AMAZON2014_BASE_URL"
    DEFAULT_BASE_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"

    def remote_files(self) -> tuple[RemoteFile, RemoteFile]:
        root = self.base_url()
        reviews = f"reviews_{self.category}_5.json.gz" if self.variant == "5core" else \
            f"reviews_{self.category}.json.gz"
        meta = f"meta_{self.category}.json.gz"
        return RemoteFile(f"{root}/{reviews}", reviews), RemoteFile(f"{root}/{meta}", meta)

    def read_reviews(self, text: RawText, progress: bool) -> pl.DataFrame:
        return read_classic_reviews(text, progress)

    def read_metadata(self, text: RawText, reviewed: pl.Series, skipped: dict[str, int],
                      progress: bool) -> pl.DataFrame:
        items, not_reviewed = read_literal_metadata(text, set(reviewed.to_list()), progress=progress)
        skipped["metadata_rows_not_reviewed"] += not_reviewed
        return items
