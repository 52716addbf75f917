"""Raw-data sources: a registry of ``<prefix>:<argument>`` specs, plus local catalogue folders.

  amazon2014:<Category>[:full]    Amazon 2014 5-core (default) or every review, + metadata
  amazon2018:<Category>[:full]    Amazon 2018 5-core (default) or every review, + metadata
  amazon2023:<Category>           Amazon Reviews 2023, every review + metadata (keyed by parent_asin)
  yelp:/path/to/folder            Yelp Open Dataset, extracted by hand (its licence forbids redistribution)
  movielens:ml-1m|ml-20m|ml-25m   MovieLens ratings as implicit interactions, with titles and genres
  /path/to/folder                 a local catalogue folder (faerec.data.sources.local)

Download roots can be moved with FAEREC_AMAZON2014_BASE_URL, FAEREC_AMAZON2018_BASE_URL,
FAEREC_AMAZON2023_BASE_URL and FAEREC_MOVIELENS_BASE_URL (a mirror, or a local server in tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from faerec.data.sources.amazon2014 import Amazon2014
from faerec.data.sources.amazon2018 import Amazon2018
from faerec.data.sources.amazon2023 import Amazon2023
from faerec.data.sources.base import Source
from faerec.data.sources.movielens import MovieLensSource
from faerec.data.sources.yelp import YelpSource
from faerec.errors import FaerecError

if TYPE_CHECKING:
    from faerec.data.sources.local import LocalSource

SOURCES: dict[str, type[Source]] = {
    cls.prefix: cls for cls in (Amazon2014, Amazon2018, Amazon2023, YelpSource, MovieLensSource)
}

__all__ = ["SOURCES", "Source", "resolve_source"]


def resolve_source(spec: str) -> Source | LocalSource:
    """The source a spec names: a registered ``<prefix>:<argument>``, or an existing local folder."""
    spec = str(spec).strip()
    if not spec:
        raise FaerecError(f"no source given; {_valid()}")
    prefix, colon, argument = spec.partition(":")
    cls = SOURCES.get(prefix.lower())
    if cls is not None and (colon or not Path(spec).exists()):
        return cls.from_spec(argument)
    path = Path(spec).expanduser()
    if path.exists():
        from faerec.data.sources.local import LocalSource

        return LocalSource(path)
    if colon and not _looks_like_path(prefix):
        raise FaerecError(f"unknown source {prefix!r}; {_valid()}")
    raise FaerecError(f"catalogue folder does not exist, and it is not a registered source; {_valid()}",
                      path=spec)


def _looks_like_path(prefix: str) -> bool:
    """"C:\\data" and "./a:b" are paths; "foo:Beauty" is a (mistyped) source."""
    return len(prefix) == 1 or any(ch in prefix for ch in "/\\.~")


def _valid() -> str:
    return "valid sources: " + ", ".join(cls.usage for cls in SOURCES.values()) + ", or a catalogue folder path"
