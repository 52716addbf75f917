"""Encoder registry: a spec string (see base.EncoderSpec) -> an Encoder. Add a variant with ``register``."""

from __future__ import annotations

from collections.abc import Callable

from faerec.errors import FaerecError
from faerec.text.encoders.base import Encoder, EncoderSpec, JobEstimate
from faerec.text.fingerprint import FileDigests

Builder = Callable[..., Encoder]
_BUILDERS: dict[str, Builder] = {}


def register(kind: str, builder: Builder) -> None:
    _BUILDERS[kind] = builder


def kinds() -> list[str]:
    return sorted(_BUILDERS)


def build_encoder(
    spec: str | EncoderSpec,
    *,
    batch_size: int | None = None,
    precision: str | None = None,
    digests: FileDigests | None = None,
) -> Encoder:
    """Build (without loading any model) the encoder a spec names, e.g. "minilm" or "openai:text-embedding-3-small"."""
    parsed = spec if isinstance(spec, EncoderSpec) else EncoderSpec.parse(spec)
    builder = _BUILDERS.get(parsed.kind)
    if builder is None:
        raise FaerecError(f"unknown encoder {parsed.canonical()!r}; use one of {kinds()} (e.g. minilm, st:<path>)")
    if batch_size is not None and batch_size < 1:
        raise FaerecError(f"batch size must be positive, got {batch_size}")
    return builder(parsed, batch_size=batch_size, precision=precision, digests=digests or FileDigests(None))


def _lazy(module: str, name: str) -> Builder:
    def build(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return build


register("minilm", _lazy("faerec.text.encoders.sentence", "build_minilm"))
register("st", _lazy("faerec.text.encoders.sentence", "build_st"))
register("openai", _lazy("faerec.text.encoders.openai_api", "build_openai"))
register("hf", _lazy("faerec.text.encoders.hf", "build_hf"))

__all__ = ["Encoder", "EncoderSpec", "JobEstimate", "build_encoder", "kinds", "register"]
