"""What every registered source provides, and the download step they share.

A source is written ``<prefix>:<argument>`` (``amazon2014:Beauty``, ``movielens:ml-1m``, ``yelp:/data/yelp``).
Its class parses the argument in ``from_spec``; ``load`` fetches the raw files into ``raw_dir`` (once) and
returns a RawCatalogue.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from faerec.data.catalogue import RawCatalogue
from faerec.data.download import download
from faerec.errors import FaerecError


class Source(ABC):
    """A registered raw-data source. ``name`` is the canonical spec, e.g. "amazon2014:Beauty"."""

    prefix: ClassVar[str]
    usage: ClassVar[str]  # how to write it, for error messages: "amazon2014:<Category>[:full]"
    name: str

    @classmethod
    @abstractmethod
    def from_spec(cls, argument: str) -> Source:
        """Build the source from the text after ``<prefix>:``; FaerecError if it names nothing valid."""

    @abstractmethod
    def dataset_stem(self) -> str:
        """A filesystem-safe stem for the dataset id, e.g. "amazon2014-Beauty"."""

    @abstractmethod
    def load(self, raw_dir: Path, progress: bool = True) -> RawCatalogue:
        """Download what is missing into ``raw_dir``, parse, and return the raw catalogue."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a source: where it lives online and its name in raw_dir."""

    url: str
    filename: str


def base_url(env_var: str, default: str) -> str:
    """The download root: ``$env_var`` when set (a mirror, or a local test server), else the public URL."""
    return (os.environ.get(env_var) or default).strip().rstrip("/")


def fetch(files: Sequence[RemoteFile], raw_dir: Path, *, progress: bool, env_var: str) -> list[Path]:
    """Download each file into ``raw_dir`` unless it is already there; return the local paths in order."""
    raw_dir = Path(raw_dir)
    hint = f"or point {env_var} at a mirror that holds the same file names"
    return [download(f.url, raw_dir / f.filename, progress=progress, hint=hint) for f in files]


def choose(value: str, choices: Iterable[str], *, what: str, usage: str) -> str:
    """The canonical spelling of ``value`` among ``choices`` (case-insensitive); else a FaerecError listing them."""
    options = list(choices)
    if not value.strip():
        raise FaerecError(f"missing {what} (source syntax {usage}); valid: {', '.join(options)}")
    found = {c.lower(): c for c in options}.get(value.strip().lower())
    if found is None:
        raise FaerecError(f"unknown {what} {value!r} (source syntax {usage}); valid: {', '.join(options)}")
    return found


def safe_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "dataset"
