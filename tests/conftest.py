"""Shared fixtures: the bundled sample, the real datasets in ../shared (skipped where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

# Keep every test's Prefect state away from the user's ~/.prefect and off the network.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def shared_dataset(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is not present (only in the project's workspace)")
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample, prepared once per test session (5-core, as `faerec pipeline` uses it)."""
    from faerec.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "sample"
    prepare(str(SAMPLE), out, progress=False)
    return out


@pytest.fixture(scope="session")
def beauty_dir() -> Path:
    return shared_dataset("amazon-beauty-2014")


@pytest.fixture
def one_torch_thread():
    """Tiny tensors gain nothing from threads, and on a shared 2-core machine a second OpenMP thread that
    waits for a busy core makes small ops many times slower; results are compared within one setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
