"""``hf:<path>``: a local LLaMA-style model through transformers, pooled hidden states of its last layer.

Options: ``pooling`` (mean|last, default mean), ``max_tokens`` (default 512), ``device``, ``normalize``
(L2, default false), ``padding_side`` (left|right; default: the tokenizer's own).
Padding is handled exactly: mean pooling averages only real tokens, last-token pooling takes each row's last
real token whichever side the padding is on, and position ids come from the attention mask, so a left-padded
row sees the positions it would see alone (rotary models are shift-invariant anyway; absolute-position models
are not). Precision "auto" (default) loads bf16 weights where the device runs bf16 natively (CUDA with native
bf16, a CPU with avx512_bf16 or amx_bf16: ``faerec.device.native_bf16``) and fp32 elsewhere; the choice is
logged and part of the fingerprint.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faerec.errors import FaerecError
from faerec.text.encoders.base import Encoder, EncoderSpec, OptionReader, pick_device, pick_precision
from faerec.text.fingerprint import FileDigests

DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_TOKENS = 512


def pool_hidden(hidden, mask, pooling: str):
    """Pool [B, L, H] hidden states over real tokens (mask [B, L] of 0/1) -> [B, H] float32."""
    import torch

    hidden = hidden.float()
    real = mask.bool().unsqueeze(-1)
    if pooling == "mean":
        # where() rather than a product: padded rows of some attention kernels hold NaN, and NaN * 0 is NaN.
        summed = torch.where(real, hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device)).sum(1)
        return summed / mask.sum(1, keepdim=True).clamp(min=1).to(hidden.dtype)
    # Index of the last real token, correct for left and right padding alike.
    length = mask.shape[1]
    last = length - 1 - mask.flip(1).to(torch.int64).argmax(1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class HFEncoder(Encoder):
    libraries = ("transformers",)

    def __init__(self, spec: EncoderSpec, *, batch_size, precision, digests: FileDigests) -> None:
        if not spec.target:
            raise FaerecError("encoder 'hf' needs a model folder: hf:<path>")
        opts = OptionReader(spec, ("pooling", "max_tokens", "device", "normalize", "padding_side"))
        self.spec = spec
        self.folder = Path(spec.target).expanduser()
        if not (self.folder / "config.json").is_file():
            raise FaerecError("not a transformers model folder (no config.json)", path=self.folder)
        self.folder = self.folder.resolve()
        self.pooling = opts.text("pooling", "mean", ("mean", "last"))
        self.max_tokens = int(opts.number("max_tokens", DEFAULT_MAX_TOKENS, minimum=1))
        self.normalize = opts.flag("normalize", False)
        self.padding_side = opts.text("padding_side", None, ("left", "right"))
        self.device = pick_device(opts.text("device"))
        self.precision = pick_precision(precision, self.device)
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE)
        self.digest = digests.folder(self.folder)
        self._model = None
        self._tokenizer = None
        self._takes_positions = False

    @property
    def slug(self) -> str:
        return f"{self.folder.name}-{self.pooling}-{self.precision}"

    def fingerprint_fields(self) -> dict:
        # padding_side is absent on purpose: with exact padding handling it does not change the vectors.
        return {
            "provider": "transformers",
            "model": self.folder.name,
            "model_digest": self.digest,
            "pooling": self.pooling,
            "max_tokens": self.max_tokens,
            "normalize": self.normalize,
            "precision": self.precision,
        }

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
            model = AutoModel.from_pretrained(self.folder, local_files_only=True, dtype=dtype)
        except Exception as exc:
            raise FaerecError(f"cannot load transformers model: {exc}", path=self.folder) from exc
        if tokenizer.pad_token is None:  # LLaMA tokenizers ship without one; any id works, it is masked out
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            if tokenizer.pad_token is None:
                raise FaerecError("tokenizer has no pad, eos or unk token to pad with", path=self.folder)
        if self.padding_side:
            tokenizer.padding_side = self.padding_side
        self._takes_positions = "position_ids" in inspect.signature(model.forward).parameters
        self._model = model.to(self.device).eval()
        self._tokenizer = tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                mask = batch["attention_mask"]
                inputs = {"input_ids": batch["input_ids"], "attention_mask": mask}
                if self._takes_positions:
                    inputs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
                hidden = self._model(**inputs).last_hidden_state
                pooled = pool_hidden(hidden, mask, self.pooling)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out.append(pooled.cpu().numpy())
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def build_hf(spec: EncoderSpec, *, batch_size, precision, digests) -> HFEncoder:
    return HFEncoder(spec, batch_size=batch_size, precision=precision, digests=digests)
