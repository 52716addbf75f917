"""``openai:<model>``: the OpenAI embeddings API (or a compatible server) through the official client.

Options: ``dimensions`` (text-embedding-3-*), ``batch_items`` (inputs per request), ``batch_tokens`` (token
budget per request), ``concurrency`` (requests in flight), ``timeout`` (seconds per request), ``attempts``
(tries per request), ``backoff`` (first backoff, seconds), ``max_tokens`` (input limit, 8191),
``price_per_mtok`` (USD per million tokens, for models without a built-in price), ``base_url``.

Every request is retried with exponential backoff and jitter on 429, 5xx, timeouts, connection errors and
malformed answers, honouring Retry-After; a request that still fails stops the job with an error (what was
already embedded stays in the cache), so no item is ever silently dropped. A 400 on a multi-input request is
split in halves, to isolate the one input the server rejects.
The key comes from OPENAI_API_KEY or, when that is unset, from the encoder's ``secret_lookup`` under the name
"openai-api-key" (the flows pass a Prefect Secret block lookup); it is read only when a request is about to
be sent and never logged, fingerprinted or returned.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from faerec.errors import FaerecError
from faerec.text.encoders.base import Encoder, EncoderSpec, JobEstimate, OptionReader
from faerec.text.encoders.retry import Backoff, retry_after_seconds
from faerec.text.tokens import TokenCounter

log = logging.getLogger(__name__)

DEFAULT_MODEL = "text-embedding-ada-002"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
SECRET_BLOCK = "openai-api-key"
# USD per million input tokens (openai.com/api/pricing).
PRICES_PER_MTOK = {"text-embedding-ada-002": 0.10, "text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13}
RETRY_STATUS = {408, 409, 429}


class MalformedResponse(Exception):
    """The server answered 2xx but not with one finite vector per input."""


class _Fatal(Exception):
    pass


def api_key(secret_lookup: Callable[[str], str | None] | None = None) -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    key = secret_lookup(SECRET_BLOCK) if secret_lookup is not None else None
    if key:
        return key
    raise FaerecError(
        f"no OpenAI API key: set OPENAI_API_KEY (or, under Prefect, create a Secret block named {SECRET_BLOCK!r})"
    )


def public_endpoint(url: str) -> str:
    """The base URL without credentials, query or fragment (safe for fingerprints and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def plan_batches(tokens: Sequence[int], max_items: int, max_tokens: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) batches with at most ``max_items`` inputs and ``max_tokens`` tokens each."""
    batches, start, total = [], 0, 0
    for i, count in enumerate(tokens):
        if i > start and (i - start >= max_items or total + count > max_tokens):
            batches.append((start, i))
            start, total = i, 0
        total += count
    if start < len(tokens):
        batches.append((start, len(tokens)))
    return batches


class OpenAIEncoder(Encoder):
    libraries = ("openai",)

    def __init__(self, spec: EncoderSpec, *, batch_size, precision, digests=None) -> None:
        opts = OptionReader(
            spec,
            ("dimensions", "batch_items", "batch_tokens", "concurrency", "timeout", "attempts", "backoff",
             "max_tokens", "price_per_mtok", "base_url"),
        )
        if precision not in (None, "auto", "fp32"):
            raise FaerecError(f"encoder {spec.canonical()!r}: the API returns fp32 vectors; precision {precision!r}")
        self.spec = spec
        self.model = spec.target or DEFAULT_MODEL
        self.dimensions = opts.number("dimensions", None, minimum=1)
        self.batch_size = int(batch_size or opts.number("batch_items", 512, minimum=1))
        if self.batch_size > 2048:
            raise FaerecError("openai accepts at most 2048 inputs per request (batch_items)")
        self.batch_tokens = int(opts.number("batch_tokens", 250_000, minimum=1))
        self.concurrency = int(opts.number("concurrency", 4, minimum=1))
        self.timeout_s = float(opts.number("timeout", 60.0, cast=float, minimum=0.001))
        self.backoff = Backoff(
            attempts=int(opts.number("attempts", 8, minimum=1)),
            base_s=float(opts.number("backoff", 1.0, cast=float)),
        )
        self.price = opts.number("price_per_mtok", PRICES_PER_MTOK.get(self.model), cast=float)
        self.base_url = opts.text("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.counter = TokenCounter(self.model, int(opts.number("max_tokens", 8191, minimum=1)))
        # Compatible servers may serve other sizes under these names, so the first answer sets the dimension
        # unless ``dimensions`` asked for one; every later answer must match it.
        self.dim: int | None = self.dimensions
        self._client = None
        self._stop = threading.Event()

    @property
    def slug(self) -> str:
        return f"openai-{self.model}" + (f"-{self.dimensions}" if self.dimensions else "")

    @property
    def chunk_items(self) -> int:
        return self.batch_size * self.concurrency * 2

    def fingerprint_fields(self) -> dict:
        return {
            "provider": "openai",
            "model": self.model,
            "dimensions": self.dimensions,
            "truncation": self.counter.method,
            "endpoint": public_endpoint(self.base_url),
        }

    def estimate(self, texts: Sequence[str]) -> JobEstimate:
        tokens = sum(self.counter.prepare(texts).tokens)
        cost = None if self.price is None else tokens / 1e6 * self.price
        method = "tiktoken" if self.counter.exact else f"estimate: bytes/{3}"
        return JobEstimate(prompts=len(texts), tokens=tokens, token_method=method, cost_usd=cost)

    def _client_once(self):
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=api_key(self.secret_lookup), base_url=self.base_url, max_retries=0, timeout=self.timeout_s
            )
        return self._client

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        prepared = self.counter.prepare(texts)
        client = self._client_once()
        batches = plan_batches(prepared.tokens, self.batch_size, self.batch_tokens)
        results: dict[int, np.ndarray] = {}
        self._stop.clear()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai-embed") as pool:
            futures = {
                pool.submit(self._request_split, client, prepared.texts[a:b], a): a for a, b in batches
            }
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                self._stop.set()
                for future in futures:
                    future.cancel()
                exc = failed[0].exception()
                if isinstance(exc, FaerecError):
                    raise exc
                raise FaerecError(f"openai embedding failed: {type(exc).__name__}") from None
            for future, start in futures.items():
                results[start] = future.result()
        if not results:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.concatenate([results[start] for start in sorted(results)])

    def _request_split(self, client, texts: list[str], offset: int) -> np.ndarray:
        try:
            return self._request(client, texts)
        except _Fatal as exc:
            status = exc.args[1] if len(exc.args) > 1 else None
            if status == 400 and len(texts) > 1:
                half = len(texts) // 2
                log.warning("openai rejected a batch of %d (HTTP 400); splitting it", len(texts))
                first = self._request_split(client, texts[:half], offset)
                return np.concatenate([first, self._request_split(client, texts[half:], offset + half)])
            where = f"prompt #{offset + 1} of this chunk" if len(texts) == 1 else f"{len(texts)} prompts"
            raise FaerecError(f"openai embedding request failed for {where}: {exc.args[0]}") from None

    def _request(self, client, texts: list[str]) -> np.ndarray:
        import openai

        kwargs = {"model": self.model, "input": texts}
        if self.dimensions:
            kwargs["dimensions"] = self.dimensions
        for attempt in range(self.backoff.attempts):
            if self._stop.is_set():
                raise FaerecError("openai embedding stopped: another request failed")
            retry_after = None
            try:
                response = client.embeddings.create(**kwargs)
                return self._vectors(response, len(texts))
            except MalformedResponse as exc:
                reason = f"malformed answer ({exc})"
            except openai.APIResponseValidationError:
                reason = "malformed answer (response validation failed)"
            except openai.APITimeoutError:
                reason = f"timeout after {self.timeout_s:g}s"
            except openai.APIConnectionError as exc:
                reason = f"connection error ({type(exc.__cause__).__name__ if exc.__cause__ else 'unknown'})"
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status not in RETRY_STATUS and status < 500:
                    raise _Fatal(f"HTTP {status} {type(exc).__name__}", status) from None
                reason = f"HTTP {status}"
                retry_after = retry_after_seconds(exc.response.headers)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                reason = f"malformed answer ({type(exc).__name__})"
            if attempt + 1 >= self.backoff.attempts:
                raise _Fatal(f"{reason}; gave up after {self.backoff.attempts} tries")
            wait_s = self.backoff.delay(attempt, retry_after)
            log.warning(
                "openai batch of %d: %s; retry %d/%d in %.2fs",
                len(texts), reason, attempt + 1, self.backoff.attempts - 1, wait_s,
            )
            if self._stop.wait(wait_s):
                raise FaerecError("openai embedding stopped: another request failed")
        raise AssertionError("unreachable")

    def _vectors(self, response, expected: int) -> np.ndarray:
        data = getattr(response, "data", None)
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise MalformedResponse(f"{got} vectors for {expected} inputs")
        order = [item.index for item in data]
        if sorted(order) != list(range(expected)):
            raise MalformedResponse("indices are not 0..n-1")
        rows = [None] * expected
        for item in data:
            rows[item.index] = item.embedding
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError):
            raise MalformedResponse("vectors of different lengths") from None
        if matrix.ndim != 2 or matrix.shape[1] == 0:
            raise MalformedResponse("not a list of vectors")
        if self.dim is not None and matrix.shape[1] != self.dim:
            raise MalformedResponse(f"dimension {matrix.shape[1]}, expected {self.dim}")
        if not np.isfinite(matrix).all():
            raise MalformedResponse("non-finite values")
        self.dim = matrix.shape[1]
        return matrix


def build_openai(spec: EncoderSpec, *, batch_size, precision, digests) -> OpenAIEncoder:
    return OpenAIEncoder(spec, batch_size=batch_size, precision=precision)

