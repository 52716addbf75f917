"""Token counting and truncation for API encoders: tiktoken when its encoding loads, else a safe fallback.

tiktoken fetches its BPE file from the internet on first use; offline, that fails. The fallback then
- estimates tokens as UTF-8 bytes / 3 (English averages about 4 bytes per token, so costs are overestimated), and
- truncates to ``max_tokens`` UTF-8 bytes, which can never exceed ``max_tokens`` tokens (a token is >= 1 byte).
The method is part of the encoder fingerprint because the two truncations send different text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

BYTES_PER_TOKEN_ESTIMATE = 3


@dataclass(frozen=True)
class Tokenized:
    texts: list[str]  # truncated to the limit
    tokens: list[int]  # per text, exact (tiktoken) or estimated (fallback)


@lru_cache(maxsize=8)
def _load_encoding(model: str):
    try:
        import tiktoken
    except ImportError:
        return None, "tiktoken is not installed"
    try:
        try:
            return tiktoken.encoding_for_model(model), ""
        except KeyError:
            return tiktoken.get_encoding("cl100k_base"), ""
    except Exception as exc:  # offline: the BPE file cannot be downloaded
        return None, f"{type(exc).__name__}"


class TokenCounter:
    def __init__(self, model: str, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.encoding, why = _load_encoding(model)
        if self.encoding is None:
            log.warning(
                "tiktoken encoding for %s unavailable (%s): estimating tokens as UTF-8 bytes / %d and "
                "truncating to %d bytes",
                model,
                why,
                BYTES_PER_TOKEN_ESTIMATE,
                max_tokens,
            )

    @property
    def method(self) -> str:
        if self.encoding is not None:
            return f"tiktoken:{self.encoding.name}:{self.max_tokens}"
        return f"utf8-bytes:{self.max_tokens}"

    @property
    def exact(self) -> bool:
        return self.encoding is not None

    def prepare(self, texts: Sequence[str]) -> Tokenized:
        if self.encoding is None:
            out_texts, counts = [], []
            for text in texts:
                raw = text.encode("utf-8")
                if len(raw) > self.max_tokens:
                    raw = raw[: self.max_tokens]
                    text = raw.decode("utf-8", errors="ignore")
                out_texts.append(text)
                counts.append(max(1, -(-len(raw) // BYTES_PER_TOKEN_ESTIMATE)))
            return Tokenized(out_texts, counts)
        ids = self.encoding.encode_ordinary_batch(list(texts))
        out_texts, counts = [], []
        for text, tokens in zip(texts, ids, strict=True):
            if len(tokens) > self.max_tokens:
                text, tokens = self._cut(tokens)
            out_texts.append(text)
            counts.append(max(1, len(tokens)))
        return Tokenized(out_texts, counts)

    def _cut(self, tokens: list[int]) -> tuple[str, list[int]]:
        # Decoding a prefix and re-encoding can merge into a different count; shrink until it fits.
        keep = self.max_tokens
        while True:
            text = self.encoding.decode(tokens[:keep])
            again = self.encoding.encode_ordinary(text)
            if len(again) <= self.max_tokens:
                return text, again
            keep -= max(1, len(again) - self.max_tokens)
