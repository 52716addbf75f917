"""Precision "auto" for the local encoders: bf16 where the device runs it natively, fp32 elsewhere; bf16 vectors
agree with fp32 ones; the choice is in the fingerprint and in the log."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faerec import device
from faerec.device import Bf16Support
from faerec.errors import FaerecError
from faerec.text.encoders import build_encoder
from faerec.text.encoders.base import resolve_precision
from faerec.text.fingerprint import fingerprint

NATIVE = Bf16Support(True, "cpu has avx512_bf16")
EMULATED = Bf16Support(False, "cpu has no avx512_bf16 or amx_bf16")


@pytest.fixture
def cpu_is(monkeypatch):
    def set_support(support: Bf16Support) -> None:
        monkeypatch.setattr(device, "cpu_bf16_support", lambda: support)

    return set_support


def test_resolve_precision():
    assert resolve_precision(None, True) == resolve_precision("auto", True) == resolve_precision("AUTO", True) == "bf16"
    assert resolve_precision(None, False) == resolve_precision("auto", False) == "fp32"
    assert resolve_precision("fp32", True) == "fp32" and resolve_precision("bf16", False) == "bf16"
    with pytest.raises(FaerecError, match="precision must be auto, fp32 or bf16"):
        resolve_precision("fp16", True)


@pytest.mark.parametrize("spec", ["minilm?device=cpu", "minilm"])
def test_minilm_defaults_to_auto_which_is_bf16_on_a_native_cpu(cpu_is, monkeypatch, spec, caplog):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu_is(NATIVE)
    with caplog.at_level(logging.INFO, logger="faerec"):
        enc = build_encoder(spec)
    assert enc.precision == "bf16" and enc.slug == "all-MiniLM-L6-v2-bf16"
    assert enc.fingerprint_fields()["precision"] == "bf16"
    assert "precision bf16 (cpu has avx512_bf16)" in caplog.messages
    assert all(r.name.startswith("faerec.") for r in caplog.records)  # shown by the CLI's "faerec" handler


def test_auto_is_fp32_elsewhere(cpu_is, caplog):
    cpu_is(EMULATED)
    with caplog.at_level(logging.INFO, logger="faerec"):
        enc = build_encoder("minilm?device=cpu", precision="auto")
    assert enc.precision == "fp32" and enc.fingerprint_fields()["precision"] == "fp32"
    assert "precision fp32 (cpu has no avx512_bf16 or amx_bf16)" in caplog.messages


def test_explicit_precision_wins_over_detection(cpu_is, caplog):
    cpu_is(NATIVE)
    with caplog.at_level(logging.INFO, logger="faerec"):
        assert build_encoder("minilm", precision="fp32").precision == "fp32"
    assert "precision fp32 (requested)" in caplog.messages
    cpu_is(EMULATED)
    assert build_encoder("minilm", precision="bf16").precision == "bf16"


def test_fingerprint_differs_between_fp32_and_bf16():
    fp32, bf16 = build_encoder("minilm", precision="fp32"), build_encoder("minilm", precision="bf16")
    assert fp32.fingerprint_fields() != bf16.fingerprint_fields()
    assert fingerprint(fp32.slug, {"encoder": fp32.fingerprint_fields()}) != fingerprint(
        bf16.slug, {"encoder": bf16.fingerprint_fields()}
    )


def test_hf_auto_follows_the_device(cpu_is, tiny_llama):
    cpu_is(NATIVE)
    assert build_encoder(f"hf:{tiny_llama}?device=cpu").precision == "bf16"
    assert build_encoder(f"hf:{tiny_llama}?device=cpu", precision="fp32").precision == "fp32"
    cpu_is(EMULATED)
    assert build_encoder(f"hf:{tiny_llama}?device=cpu").precision == "fp32"


def test_bf16_agrees_with_fp32_on_real_prompts(make_dataset):
    """Per item cosine >= 0.999 on 50 real catalogue prompts (measured on 1,000: min 0.99997)."""
    if not device.native_bf16("cpu"):
        pytest.skip(f"this CPU has no native bf16 ({device.bf16_reason('cpu')}); bf16 would be emulated")
    from faerec.text.items import read_items
    from faerec.text.prompts import render_prompts

    catalogue = read_items(make_dataset(50))
    prompts = render_prompts(catalogue.items, catalogue.domain)
    fp32 = build_encoder("minilm?device=cpu", precision="fp32").encode(prompts)
    bf16 = build_encoder("minilm?device=cpu", precision="bf16").encode(prompts)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (50, 384)
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() >= 0.999, f"min cosine {cosine.min():.5f} (mean {cosine.mean():.5f})"
    assert not np.array_equal(fp32, bf16)  # bf16 really ran


# -- backend=openvino ------------------------------------------------------------------------------------------
def test_openvino_backend_is_in_the_fingerprint_and_torch_fingerprints_are_unchanged():
    torch_enc = build_encoder("minilm", precision="bf16")
    ov_enc = build_encoder("minilm?backend=openvino", precision="bf16")
    assert "backend" not in torch_enc.fingerprint_fields()  # the fields (and fingerprints) from before backends
    assert build_encoder("minilm?backend=torch", precision="bf16").fingerprint_fields() == torch_enc.fingerprint_fields()
    assert ov_enc.fingerprint_fields() == {**torch_enc.fingerprint_fields(), "backend": "openvino"}
    assert ov_enc.slug == "all-MiniLM-L6-v2-bf16-openvino"
    with pytest.raises(FaerecError, match="backend must be one of"):
        build_encoder("minilm?backend=onnx")
    with pytest.raises(FaerecError, match="backend=openvino runs on the CPU"):
        build_encoder("minilm?backend=openvino&device=cuda")


def test_openvino_backend_auto_precision_follows_the_cpu(cpu_is, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU does not matter: OpenVINO runs on the CPU
    monkeypatch.setattr(device, "_cuda_support", lambda _device: Bf16Support(True, "cuda"))
    cpu_is(EMULATED)
    assert build_encoder("minilm?backend=openvino").precision == "fp32"
    cpu_is(NATIVE)
    assert build_encoder("minilm?backend=openvino").precision == "bf16"


def test_openvino_backend_without_the_package_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    enc = build_encoder("minilm?backend=openvino", precision="fp32")
    with pytest.raises(FaerecError, match=r"pip install 'faerec\[openvino\]'"):
        enc.encode(["lip balm"])


def test_openvino_backend_agrees_with_torch(make_dataset, monkeypatch, tmp_path):
    """fp32 OpenVINO matches torch fp32 (cosine >= 0.99999); bf16 (where native) agrees to >= 0.999."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'faerec[openvino]')")
    from faerec.text.items import read_items
    from faerec.text.prompts import render_prompts

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    catalogue = read_items(make_dataset(50))
    prompts = render_prompts(catalogue.items, catalogue.domain)
    reference = build_encoder("minilm?device=cpu", precision="fp32").encode(prompts)
    floors = {"fp32": 0.99999, "bf16": 0.999} if device.native_bf16("cpu") else {"fp32": 0.99999}
    for precision, floor in floors.items():
        vectors = build_encoder("minilm?backend=openvino", precision=precision).encode(prompts)
        assert vectors.dtype == np.float32 and vectors.shape == reference.shape
        cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
        assert cosine.min() >= floor, f"{precision}: min cosine {cosine.min():.6f}"
    assert len(list((tmp_path / "user-cache" / "faerec" / "openvino").glob("*/model.xml"))) == 1  # converted once
