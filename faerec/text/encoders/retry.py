"""Exponential backoff with full jitter that honours a server's Retry-After."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Backoff:
    attempts: int = 8  # total tries per request, the first included
    base_s: float = 1.0
    cap_s: float = 60.0
    max_retry_after_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 0 for the first retry)."""
        jittered = self.rng.uniform(0.0, min(self.cap_s, self.base_s * (2.0**attempt)))
        if retry_after_s is None:
            return jittered
        # The server's wait is a floor; jitter on top keeps many clients from retrying in lockstep.
        return min(retry_after_s, self.max_retry_after_s) + jittered * 0.1


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (a number or an HTTP date); None when absent/invalid."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
