"""Fingerprints: short, stable names for "this exact encoder with these exact settings".

A fingerprint is a readable slug plus 16 hex digits of sha256 over the canonical JSON of its fields, so two
settings that could give different vectors never share a cache namespace or an output file. Model folders are
identified by the sha256 of their files; hashing a multi-GB model is slow, so digests are memoised on disk,
keyed by (path, size, mtime).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from faerec.hashing import digest as hashed
from faerec.hashing import file_digest
from faerec.io import write_json

log = logging.getLogger(__name__)

# Files in a model folder that never change the vectors.
_IGNORED_FILES = {"README.md", ".gitattributes", ".gitignore", "LICENSE", "data_config.json"}
_CHUNK = 1 << 22


def fingerprint(slug: str, fields: dict) -> str:
    digest = hashed(fields)
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", slug).strip("-").lower()[:48] or "encoder"
    return f"{slug}-{digest}"


def hash_file(path: Path) -> str:
    return file_digest(path, _CHUNK)


class FileDigests:
    """sha256 of files, remembered across runs in a small JSON file (keyed by path, size and mtime)."""

    def __init__(self, memo_path: Path | None) -> None:
        self.memo_path = memo_path
        self._memo: dict[str, dict] = {}
        self._dirty = False
        if memo_path is not None and memo_path.is_file():
            try:
                self._memo = json.loads(memo_path.read_text())
            except (OSError, ValueError):
                log.warning("ignoring unreadable digest memo %s", memo_path)

    def file(self, path: Path) -> str:
        path = path.resolve()
        st = path.stat()
        key = str(path)
        entry = self._memo.get(key)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            return entry["sha256"]
        if st.st_size > 64 << 20:
            log.info("hashing %s (%.0f MB) for the encoder fingerprint", path, st.st_size / 2**20)
        digest = hash_file(path)
        self._memo[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        self._dirty = True
        return digest

    def folder(self, folder: Path) -> str:
        """One digest over every file in a model folder (relative names and contents)."""
        h = hashlib.sha256()
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.name not in _IGNORED_FILES and ".git" not in p.parts
        )
        for path in files:
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(self.file(path).encode())
        return h.hexdigest()

    def save(self) -> None:
        if self._dirty and self.memo_path is not None:
            try:
                write_json(self.memo_path, self._memo)
                self._dirty = False
            except OSError as exc:  # a read-only cache still works, only slower next time
                log.warning("could not save digest memo %s: %s", self.memo_path, exc)


def memo_path_for(cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    return Path(cache_dir) / "file-digests.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get("FAEREC_CACHE_DIR") or "embeddings_cache")
