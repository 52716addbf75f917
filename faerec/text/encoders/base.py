"""The one interface every text encoder implements, and the encoder spec string.

A spec is ``kind[:target][?key=value&key=value]``, e.g. ``minilm``, ``st:/models/e5``,
``openai:text-embedding-3-small?dimensions=256``, ``hf:/models/llama?pooling=last``.
Building an encoder is cheap (no model load): the fingerprint is computed from files and settings, and the
model is loaded on the first ``encode`` call, so a fully cached run never pays for it.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import numpy as np

from faerec.device import PRECISIONS, bf16_support, resolve_device
from faerec.errors import FaerecError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderSpec:
    kind: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> EncoderSpec:
        text = spec.strip()
        if not text:
            raise FaerecError("empty encoder spec; use minilm, st:<path>, openai:<model> or hf:<path>")
        query = ""
        if "?" in text:
            text, query = text.split("?", 1)
        kind, _, target = text.partition(":")
        options: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            options[key] = value
        return cls(kind.strip().lower(), target.strip(), options)

    def canonical(self) -> str:
        text = self.kind + (f":{self.target}" if self.target else "")
        if self.options:
            text += "?" + "&".join(f"{k}={_public_value(k, v)}" for k, v in sorted(self.options.items()))
        return text


_SECRET_NAME = re.compile(r"(key|secret|password|passwd|auth)$", re.IGNORECASE)


def _public_value(name: str, value: str) -> str:
    """Option values as they may appear in names, logs and files: secrets masked, URLs without user:password."""
    if _SECRET_NAME.search(name):
        return "***"
    return _without_credentials(value)


def _without_credentials(value: str) -> str:
    """A URL option never carries user:password into names, logs or files."""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.username is None and parts.password is None:
        return value
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class OptionReader:
    """Typed access to spec options; unknown options are an error, not silently ignored."""

    def __init__(self, spec: EncoderSpec, allowed: Sequence[str]) -> None:
        unknown = sorted(set(spec.options) - set(allowed))
        if unknown:
            raise FaerecError(
                f"encoder {spec.canonical()!r}: unknown option(s) {unknown}; accepted: {sorted(allowed)}"
            )
        self.spec = spec

    def text(self, key: str, default: str | None = None, choices: Sequence[str] | None = None) -> str | None:
        value = self.spec.options.get(key, default)
        if value is not None and choices is not None and value not in choices:
            raise FaerecError(f"encoder {self.spec.canonical()!r}: {key} must be one of {list(choices)}, got {value!r}")
        return value

    def number(self, key: str, default: float | None, cast: type = int, minimum: float = 0) -> float | None:
        raw = self.spec.options.get(key)
        if raw is None:
            return default
        try:
            value = cast(raw)
        except ValueError:
            raise FaerecError(f"encoder {self.spec.canonical()!r}: {key} must be a number, got {raw!r}") from None
        if value < minimum:
            raise FaerecError(f"encoder {self.spec.canonical()!r}: {key} must be at least {minimum}, got {raw!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self.spec.options.get(key)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise FaerecError(f"encoder {self.spec.canonical()!r}: {key} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class JobEstimate:
    """What a job will cost before it starts (API encoders)."""

    prompts: int
    tokens: int
    token_method: str
    cost_usd: float | None  # None when the model's price is unknown


class Encoder(ABC):
    """Turns prompts into float32 vectors. Subclasses are cheap to build and load their model lazily."""

    spec: EncoderSpec
    batch_size: int
    # name -> secret value, provided by an orchestrator (the flows pass Prefect Secret blocks); encoders that
    # need a credential consult it after the environment. The library itself never looks secrets up elsewhere.
    secret_lookup: Callable[[str], str | None] | None = None

    # modules the first ``encode`` imports; a caller may import them early to overlap other work (flows.warm_start)
    libraries: tuple[str, ...] = ()

    @property
    @abstractmethod
    def slug(self) -> str:
        """A short readable name for file names (e.g. "minilm-fp32")."""

    @abstractmethod
    def fingerprint_fields(self) -> dict:
        """Everything that changes the vectors: model identity and digest, precision, max tokens, pooling..."""

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array [len(texts), dim], row i for texts[i]. Must not drop or reorder anything."""

    @property
    def chunk_items(self) -> int:
        """How many prompts to hand to one ``encode`` call (progress is reported between calls)."""
        return self.batch_size * 8

    def estimate(self, texts: Sequence[str]) -> JobEstimate | None:
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def check_precision(precision: str | None) -> str:
    """The requested precision, lower-cased; None means "auto" (the local encoders' default)."""
    text = (precision or "auto").lower()
    if text not in PRECISIONS:
        raise FaerecError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    return text


def resolve_precision(precision: str | None, native_bf16: bool) -> str:
    """"auto" (or None) -> bf16 where the device runs bf16 natively, else fp32; fp32 and bf16 as given."""
    precision = check_precision(precision)
    if precision == "auto":
        return "bf16" if native_bf16 else "fp32"
    return precision


def pick_precision(precision: str | None, device: str | None) -> str:
    """The precision for a local encoder on ``device`` (only consulted for "auto"), logged as
    "precision bf16 (cpu has avx512_bf16)" or "precision fp32 (requested)" (the CLI shows it on stderr).

    Detection lives in ``faerec.device`` (CUDA with native bf16, a CPU with avx512_bf16 or amx_bf16, ...);
    ``device`` None means the "auto" device.
    """
    requested = check_precision(precision)
    if requested == "auto":
        support = bf16_support(device or pick_device(None))
        chosen, reason = resolve_precision(requested, support.native), support.reason
    else:
        chosen, reason = requested, "requested"
    log.info("precision %s (%s)", chosen, reason)
    return chosen


def pick_device(requested: str | None) -> str:
    """The torch device name for a local encoder ("auto": CUDA when available)."""
    return str(resolve_device(requested))
