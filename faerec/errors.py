"""One exception type for every problem a user can fix, so the CLI prints a clear message, not a traceback."""

from __future__ import annotations

from pathlib import Path


class FaerecError(Exception):
    """A user-facing error. The message names the file (and the line or row) at fault where there is one."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class DownloadError(FaerecError):
    """A raw file could not be fetched; the message says where to put it by hand."""
