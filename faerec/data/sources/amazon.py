"""What the three Amazon review dumps (2014, 2018, 2023) share: the spec syntax, downloads, and the join.

Spec: ``<prefix>:<Category>`` or ``<prefix>:<Category>:<variant>`` where the variant is ``5core`` (the
dump's own 5-core review file; the default where one exists) or ``full`` (every review). Categories are
matched case-insensitively and written canonically (``amazon2014:beauty`` -> ``amazon2014:Beauty``).

Reading: reviews first; then only the metadata rows of reviewed items are kept (Amazon metadata covers far
more items than any review file uses, and the 2014 metadata is slow to parse), counted in
``skipped["metadata_rows_not_reviewed"]``. Duplicate metadata rows keep the first (counted), reviewed items
with no metadata row are counted in ``skipped["reviewed_items_without_metadata"]`` and left to ``prepare``.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import polars as pl

from faerec.data.catalogue import RawCatalogue
from faerec.data.sources.base import RemoteFile, Source, base_url, choose, fetch
from faerec.data.sources.lines import RawText
from faerec.data.sources.ndjson import NdjsonSpec, read_ndjson

# Nouns for prompts ("This beauty item is ..."); a category not listed is a "product".
DOMAIN_NOUNS: dict[str, str] = {
    "Beauty": "beauty item",
    "All_Beauty": "beauty item",
    "Luxury_Beauty": "beauty item",
    "Beauty_and_Personal_Care": "beauty item",
    "Grocery_and_Gourmet_Food": "grocery item",
    "Prime_Pantry": "grocery item",
    "Sports_and_Outdoors": "sports item",
    "Toys_and_Games": "toy",
    "Books": "book",
    "Kindle_Store": "e-book",
    "Movies_and_TV": "movie or TV show",
    "Amazon_Instant_Video": "video",
    "CDs_and_Vinyl": "music album",
    "Digital_Music": "music album",
    "Video_Games": "video game",
    "Clothing_Shoes_and_Jewelry": "fashion item",
    "AMAZON_FASHION": "fashion item",
    "Amazon_Fashion": "fashion item",
    "Apps_for_Android": "app",
    "Musical_Instruments": "musical instrument",
    "Pet_Supplies": "pet supply",
    "Office_Products": "office product",
}


def amazon_domain(category: str) -> str:
    return DOMAIN_NOUNS.get(category, "product")


class AmazonSource(Source):
    """One category of an Amazon review dump. Subclasses name the files and read their formats."""

    CATEGORIES: ClassVar[tuple[str, ...]]
    VARIANTS: ClassVar[tuple[str, ...]] = ("5core", "full")  # the first is the default (no suffix)
    ENV_VAR: ClassVar[str]
    DEFAULT_BASE_URL: ClassVar[str]

    def __init__(self, category: str, variant: str | None = None) -> None:
        self.category = choose(category, self.CATEGORIES, what=f"{self.prefix} category", usage=self.usage)
        variant = self.VARIANTS[0] if variant is None else variant.replace("-", "")
        self.variant = choose(variant, self.VARIANTS, what=f"{self.prefix} variant", usage=self.usage)
        suffix = "" if self.variant == self.VARIANTS[0] else f":{self.variant}"
        self.name = f"{self.prefix}:{self.category}{suffix}"

    @classmethod
    def from_spec(cls, argument: str) -> AmazonSource:
        category, _, variant = argument.partition(":")
        return cls(category, variant or None)

    def dataset_stem(self) -> str:
        suffix = "" if self.variant == self.VARIANTS[0] else f"-{self.variant}"
        return f"{self.prefix}-{self.category}{suffix}"

    @property
    def domain(self) -> str:
        return amazon_domain(self.category)

    def base_url(self) -> str:
        return base_url(self.ENV_VAR, self.DEFAULT_BASE_URL)

    @abstractmethod
    def remote_files(self) -> tuple[RemoteFile, RemoteFile]:
        """(reviews, metadata)."""

    @abstractmethod
    def read_reviews(self, text: RawText, progress: bool) -> pl.DataFrame:
        """user_id, item_id, timestamp in file order."""

    @abstractmethod
    def read_metadata(self, text: RawText, reviewed: pl.Series, skipped: dict[str, int],
                      progress: bool) -> pl.DataFrame:
        """ITEM_SCHEMA columns for reviewed items (a superset row per item is fine: duplicates are removed)."""

    def load(self, raw_dir: Path, progress: bool = True) -> RawCatalogue:
        reviews_path, meta_path = fetch(self.remote_files(), raw_dir, progress=progress, env_var=self.ENV_VAR)
        interactions = self.read_reviews(RawText(reviews_path), progress)
        reviewed = interactions.get_column("item_id").unique(maintain_order=True)
        skipped = {"metadata_rows_not_reviewed": 0}
        items = self.read_metadata(RawText(meta_path), reviewed, skipped, progress)
        unique = items.unique(subset="item_id", keep="first", maintain_order=True)
        skipped["duplicate_metadata_rows"] = items.height - unique.height
        skipped["reviewed_items_without_metadata"] = reviewed.len() - unique.height
        return RawCatalogue(source=self.name, interactions=interactions, items=unique, domain=self.domain,
                            files=[str(reviews_path), str(meta_path)], skipped=skipped)


def keep_reviewed(frame: pl.DataFrame, reviewed: pl.Series, skipped: dict[str, int]) -> pl.DataFrame:
    """The rows of ``frame`` (an item_id column) for reviewed items; the others are counted, not kept."""
    kept = frame.filter(pl.col("item_id").is_in(reviewed.implode()))
    skipped["metadata_rows_not_reviewed"] += frame.height - kept.height
    return kept


def read_classic_reviews(text: RawText, progress: bool) -> pl.DataFrame:
    """The 2014 and 2018 review format: one JSON object per line with reviewerID, asin, unixReviewTime."""
    spec = NdjsonSpec(
        fields={"reviewerID": pl.Utf8, "asin": pl.Utf8, "unixReviewTime": pl.Int64},
        required=("reviewerID", "asin", "unixReviewTime"),
        per_block=lambda f: f.select(pl.col("reviewerID").alias("user_id"), pl.col("asin").alias("item_id"),
                                     pl.col("unixReviewTime").alias("timestamp")),
    )
    return read_ndjson(text, spec, progress=progress, desc=f"reading {text.path.name}")
