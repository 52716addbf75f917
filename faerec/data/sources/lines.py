"""Stream a large raw text file (plain, gzip, or a zip member) as blocks of whole lines, with line numbers.

Dumps run to tens of GB decompressed, so nothing here holds a whole file: a block of ~64 MiB of complete
lines is parsed by polars and reduced to the few columns a reader keeps before the next block is read.
A gzip that ends early, a zip that is damaged, or a file with no lines becomes a FaerecError naming the file.
"""

from __future__ import annotations

import contextlib
import gzip
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from faerec.errors import FaerecError

BLOCK_BYTES = 64 << 20
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LineBlock:
    """Whole lines ``data`` (split on b"\\n") whose first line is line ``first_line`` (1-based) of the file."""

    first_line: int
    data: bytes

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line without its newline) for every non-blank line."""
        for offset, line in enumerate(self.data.split(b"\n")):
            if line.strip():
                yield self.first_line + offset, line.rstrip(b"\r")


class RawText:
    """A line-oriented raw file: ``path`` itself (gzip detected by its magic bytes) or ``member`` of a zip."""

    def __init__(self, path: str | Path, member: str | None = None) -> None:
        self.path = Path(path)
        self.member = member

    @property
    def label(self) -> str:
        """How messages name the file: the path, or ``archive.zip/member`` for a zip member."""
        return f"{self.path}/{self.member}" if self.member else str(self.path)

    def blocks(self, *, progress: bool = False, desc: str | None = None,
               block_bytes: int = BLOCK_BYTES) -> Iterator[LineBlock]:
        """Yield blocks of whole lines; raise FaerecError if the file is missing, damaged or has no lines."""
        with self._open() as (stream, raw, total):
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False,
                       desc=desc or self.path.name, disable=not progress)
            with bar:
                yield from self._split(stream, raw, bar, block_bytes)

    def _split(self, stream: BinaryIO, raw: BinaryIO, bar: tqdm, block_bytes: int) -> Iterator[LineBlock]:
        line_no, carry, seen_text = 1, b"", False
        while True:
            try:
                chunk = stream.read(block_bytes)
            except EOFError:
                last = line_no + carry.count(b"\n")
                raise FaerecError(f"truncated gzip file: it ends inside line {last}; delete it and run again "
                                  "to download it afresh", path=self.label) from None
            except (OSError, zlib.error, zipfile.BadZipFile) as exc:
                raise FaerecError(f"corrupt compressed data near line {line_no} ({exc}); delete the file and "
                                  "run again to download it afresh", path=self.label) from None
            bar.update(raw.tell() - bar.n)
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            if line_no == 1 and block.startswith(UTF8_BOM):  # some editors prepend one; parsers choke on it
                block = block[len(UTF8_BOM):]
            seen_text = seen_text or bool(block.strip())
            yield LineBlock(line_no, block)
            line_no += block.count(b"\n")
        if carry:
            if line_no == 1 and carry.startswith(UTF8_BOM):
                carry = carry[len(UTF8_BOM):]
            seen_text = seen_text or bool(carry.strip())
            yield LineBlock(line_no, carry)
        if not seen_text:
            raise FaerecError("file is empty (no data lines)", path=self.label)

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[BinaryIO, BinaryIO, int]]:
        """Yield (decompressed stream, underlying file for progress, underlying size)."""
        if not self.path.exists():
            raise FaerecError("file does not exist", path=self.path)
        if self.path.is_dir():
            raise FaerecError("expected a file, found a folder", path=self.path)
        size = self.path.stat().st_size
        if size == 0:
            raise FaerecError("file is empty (0 bytes)", path=self.path)
        with open(self.path, "rb") as raw:
            if self.member is not None:
                with _zip_member(raw, self.path, self.member) as stream:
                    yield stream, raw, size
                return
            magic = raw.read(2)
            raw.seek(0)
            if magic == GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    yield stream, raw, size
            else:
                yield raw, raw, size


@contextlib.contextmanager
def _zip_member(raw: BinaryIO, path: Path, member: str) -> Iterator[BinaryIO]:
    try:
        archive = zipfile.ZipFile(raw)
    except zipfile.BadZipFile as exc:
        raise FaerecError(f"not a valid zip archive ({exc}); delete it and run again to download it afresh",
                          path=path) from None
    with archive:
        names = archive.namelist()
        if member not in names:
            raise FaerecError(f"the archive has no member {member!r} (it holds {names[:8]})", path=path)
        with archive.open(member) as stream:
            yield stream
