"""Fetch one raw file over HTTP(S) into ``data/raw/...``: once, resumably, size-checked, atomically.

* The bytes go to ``<file>.part``; only a complete file is renamed to ``<file>``, so a file under its final
  name is always whole and is never fetched again (a file put there by hand counts as well).
* A ``.part`` left by a dropped connection or a killed run is resumed with an HTTP Range request. A server
  that ignores Range (200 instead of 206) or answers with the wrong range makes us restart from byte 0.
* The final size is checked against Content-Length (or the total in Content-Range).
* No network: a DownloadError that names the URL and the exact path to put the file at by hand.

urllib (stdlib) is enough here; the transfer loop is the only hot part and it moves 1 MiB blocks.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from faerec.errors import DownloadError
from faerec.locks import LockBusy, file_lock

BLOCK_BYTES = 1 << 20
USER_AGENT = "faerec-downloader/1 (+https://github.com/faerec)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class DownloadOptions:
    timeout: float = 60.0  # seconds without a byte before a read gives up
    attempts: int = 4  # tries in one call; each try resumes from what the previous ones got
    retry_wait: float = 2.0  # seconds before try n+1, times n


class _Retry(Exception):
    """A transient failure (dropped connection, short body, 5xx): try again, resuming the .part file."""


class _Fatal(Exception):
    """No route to the file (name resolution, refused connection, 404): retrying will not help."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: str | Path, *, progress: bool = True, hint: str | None = None,
             options: DownloadOptions | None = None) -> Path:
    """Make sure ``dest`` holds the file at ``url``; return ``dest``.

    ``hint`` is added to the error message (e.g. which environment variable points at a mirror).
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    opts = options or DownloadOptions()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    last_reason = "no attempt was made"
    with _exclusive(part, url, dest):
        if dest.is_file():  # another process finished it while we waited for the lock
            return dest
        for attempt in range(1, max(1, opts.attempts) + 1):
            try:
                _fetch_once(url, part, progress=progress, timeout=opts.timeout)
                break
            except _Fatal as exc:
                raise DownloadError(_manual_message(url, dest, str(exc), hint, partial=part.exists())) from None
            except _Retry as exc:
                last_reason = str(exc)
                if attempt < opts.attempts:
                    time.sleep(opts.retry_wait * attempt)
        else:
            raise DownloadError(_manual_message(url, dest, last_reason, hint, partial=part.exists()))
        os.replace(part, dest)
    return dest


def _fetch_once(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """One HTTP request: append to (or restart) ``part`` until the body ends. Raises _Retry on a short body."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https URLs only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            # Nothing left to send: either the .part is already whole, or it is longer than the file.
            total = _total_from_content_range(exc.headers.get("Content-Range", ""))
            if total is not None and total == have:
                return
            part.unlink()
            raise _Retry("the partial file did not match the server's file; restarting") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise _Fatal(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if _is_transient(reason):
            raise _Retry(f"{type(reason).__name__}: {reason}") from None
        raise _Fatal(f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason) from None

    with response:
        status = response.status
        length = _int_or_none(response.headers.get("Content-Length"))
        if status == 206 and have:
            start, total = _parse_content_range(response.headers.get("Content-Range", ""))
            if start != have:  # a range we did not ask for: start again from byte 0
                part.unlink()
                raise _Retry(f"server answered range from byte {start}, expected {have}; restarting")
            if total is None and length is not None:
                total = have + length
            mode = "ab"
        else:
            # 200: the server ignored our Range (or we sent none): the body is the whole file.
            have, total, mode = 0, length, "wb"
        _copy_body(response, part, mode, have=have, total=total, progress=progress)

    size = part.stat().st_size
    if total is not None and size < total:
        raise _Retry(f"connection closed after {size:,} of {total:,} bytes")
    if total is not None and size > total:
        part.unlink()
        raise _Retry(f"received {size:,} bytes, more than the announced {total:,}; restarting")


def _copy_body(response: BinaryIO, part: Path, mode: str, *, have: int, total: int | None,
               progress: bool) -> None:
    bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
               desc=part.name.removesuffix(".part"), disable=not progress, leave=False)
    with bar, open(part, mode) as out:
        try:
            while True:
                block = response.read(BLOCK_BYTES)
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
            out.flush()
            os.fsync(out.fileno())
            raise _Retry(f"transfer interrupted ({type(exc).__name__}: {exc})") from None
        out.flush()
        os.fsync(out.fileno())


def _is_transient(reason: object) -> bool:
    if isinstance(reason, (socket.gaierror, ConnectionRefusedError)):
        return False
    if isinstance(reason, str):  # urllib wraps some failures as text, e.g. "unknown url type"
        return False
    return isinstance(reason, (TimeoutError, ConnectionError, socket.timeout, http.client.HTTPException, OSError))


def _parse_content_range(value: str) -> tuple[int | None, int | None]:
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        return None, None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _total_from_content_range(value: str) -> int | None:
    match = re.match(r"bytes\s+\*/(\d+)", value.strip())
    return int(match.group(1)) if match else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _manual_message(url: str, dest: Path, reason: str, hint: str | None, *, partial: bool) -> str:
    text = (f"could not download {url} ({reason}). If this machine is offline or the server refuses, fetch "
            f"that file by hand and put it at {dest.resolve()} , then run the command again")
    if partial:
        text += f"; the partial download in {part_path(dest).resolve()} resumes on the next run"
    if hint:
        text += f"; {hint}"
    return text


@contextlib.contextmanager
def _exclusive(part: Path, url: str, dest: Path) -> Iterator[None]:
    """Hold a lock beside the .part file, so that two processes never append to the same file."""
    lock_path = part.with_name(part.name + ".lock")
    try:
        with file_lock(lock_path, exclusive=True, wait=False):
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    lock_path.unlink()
    except LockBusy:
        raise DownloadError(f"another process is already downloading {url} into {dest}; wait for it "
                            "to finish, then run again") from None
