"""MovieLens (GroupLens): ``movielens:ml-1m``, ``movielens:ml-20m``, ``movielens:ml-25m``.

The release zip is downloaded from ``$FAEREC_MOVIELENS_BASE_URL`` (default files.grouplens.org) and read in
place, without extracting:
  ml-1m:            ml-1m/ratings.dat  UserID::MovieID::Rating::Timestamp   (latin-1)
                    ml-1m/movies.dat   MovieID::Title::Genre|Genre          (latin-1)
  ml-20m, ml-25m:   <release>/ratings.csv  userId,movieId,rating,timestamp  (with header)
                    <release>/movies.csv   movieId,title,genres             (with header, quoted titles)
Every rating is an implicit interaction (no threshold, as in the sequential-recommendation literature);
timestamp in seconds. Items: title as given ("Toy Story (1995)"); genres -> categories ("(no genres
listed)" -> null); brand, description and price stay null.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl

from faerec.data.catalogue import RawCatalogue
from faerec.data.sources import fields
from faerec.data.sources.base import RemoteFile, Source, base_url, choose, fetch
from faerec.data.sources.delimited import DelimitedSpec, read_delimited
from faerec.data.sources.lines import RawText

ENV_VAR = "FAEREC_MOVIELENS_BASE_URL"
DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"
RATING_COLUMNS = {"user_id": pl.Utf8, "item_id": pl.Utf8, "rating": pl.Float64, "timestamp": pl.Int64}
MOVIE_COLUMNS = {"item_id": pl.Utf8, "title": pl.Utf8, "genres": pl.Utf8}


@dataclass(frozen=True)
class Release:
    ratings: str  # member of the zip
    movies: str
    ratings_spec: DelimitedSpec
    movies_spec: DelimitedSpec


_DAT = dict(separator="::", encoding="latin-1")
_CSV_RATINGS = DelimitedSpec(RATING_COLUMNS, ",", header=("userId", "movieId", "rating", "timestamp"))
_CSV_MOVIES = DelimitedSpec(MOVIE_COLUMNS, ",", header=("movieId", "title", "genres"), quoted=True)

RELEASES: dict[str, Release] = {
    "ml-1m": Release("ml-1m/ratings.dat", "ml-1m/movies.dat", DelimitedSpec(RATING_COLUMNS, **_DAT),
                     DelimitedSpec(MOVIE_COLUMNS, **_DAT)),
    "ml-20m": Release("ml-20m/ratings.csv", "ml-20m/movies.csv", _CSV_RATINGS, _CSV_MOVIES),
    "ml-25m": Release("ml-25m/ratings.csv", "ml-25m/movies.csv", _CSV_RATINGS, _CSV_MOVIES),
}


class MovieLensSource(Source):
    prefix: ClassVar[str] = "movielens"
    usage: ClassVar[str] = "movielens:ml-1m|ml-20m|ml-25m"

    def __init__(self, release: str) -> None:
        release = release.strip()
        if release and not release.lower().startswith("ml-"):
            release = f"ml-{release}"  # "movielens:1m" means ml-1m
        self.release = choose(release, RELEASES, what="MovieLens release", usage=self.usage)
        self.name = f"movielens:{self.release}"

    @classmethod
    def from_spec(cls, argument: str) -> MovieLensSource:
        return cls(argument)

    def dataset_stem(self) -> str:
        return self.release

    def load(self, raw_dir: Path, progress: bool = True) -> RawCatalogue:
        archive_name = f"{self.release}.zip"
        url = f"{base_url(ENV_VAR, DEFAULT_BASE_URL)}/{archive_name}"
        (archive,) = fetch([RemoteFile(url, archive_name)], raw_dir, progress=progress, env_var=ENV_VAR)
        release = RELEASES[self.release]
        ratings = read_delimited(RawText(archive, release.ratings), release.ratings_spec, progress=progress,
                                 desc=f"reading {release.ratings}")
        movies = read_delimited(RawText(archive, release.movies), release.movies_spec)
        items = movies.with_columns(
            pl.col("genres").str.replace("(no genres listed)", "", literal=True)
        ).select("item_id", fields.text("title"), fields.split_list("genres", "|").alias("categories"))
        return RawCatalogue(source=self.name, interactions=ratings.drop("rating"), items=items, domain="movie",
                            files=[f"{archive}/{release.ratings}", f"{archive}/{release.movies}"])
