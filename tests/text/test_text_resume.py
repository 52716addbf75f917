"""Kill ``faerec embed`` with SIGKILL mid-run; the rerun embeds only what is missing and matches a clean run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
from text_fixtures import REPO, real_items, write_dataset

from faerec.text.cache import PART_GLOB
from faerec.text.embed import embed_dataset
from faerec.text.store import load_embeddings

N_ITEMS = 48
SAVE_EVERY = 4
FIELD_CHARS = 120


def _parts(cache):
    return sorted(cache.glob(f"*/{PART_GLOB}"))


def test_killed_run_resumes_with_only_the_missing_items(tmp_path):
    dataset = write_dataset(tmp_path / "ds", real_items(N_ITEMS))
    cache = tmp_path / "cache"
    cmd = [
        sys.executable, "-m", "faerec.cli", "embed", str(dataset), "--cache-dir", str(cache),
        "--save-every", str(SAVE_EVERY), "--field-chars", str(FIELD_CHARS), "--pca-dim", "8", "--no-progress",
        "--batch-size", "4", "--precision", "fp32",  # fp32: a row never depends on its batch (bf16 does, ~1e-3)
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    try:
        while len(_parts(cache)) < 3:
            assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()[1][-2000:]!r}"
            assert time.monotonic() < deadline, "no cache parts appeared"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (dataset / "embeddings").exists()  # killed before any output was written

    parts = _parts(cache)
    saved = len(parts) * SAVE_EVERY
    assert 3 * SAVE_EVERY <= saved < N_ITEMS
    resumed = embed_dataset(dataset, cache_dir=cache, field_chars=FIELD_CHARS, pca_dim=8, progress=False,
                            precision="fp32")
    assert resumed["prompts_encoded"] == resumed["embedded"] - (resumed["embedded"] - resumed["prompts_encoded"])
    assert resumed["cached"] >= saved and resumed["embedded"] == N_ITEMS - resumed["cached"]
    assert resumed["embedded"] > 0
    assert set(parts) <= set(_parts(cache))  # the killed run's parts were reused, not rewritten

    clean_dir = write_dataset(tmp_path / "clean", real_items(N_ITEMS))
    clean = embed_dataset(clean_dir, cache_dir=tmp_path / "clean-cache", field_chars=FIELD_CHARS, pca_dim=8,
                          progress=False, precision="fp32")
    assert clean["fingerprint"] == resumed["fingerprint"] and clean["embedded"] == N_ITEMS
    got, _ = load_embeddings(dataset)
    want, _ = load_embeddings(clean_dir)
    assert np.abs(got - want).max() <= 1e-6
