"""Fixtures for the flow tests: an isolated Prefect home and faerec folders, a tiny real catalogue.

The tiny catalogue is the 500 most active users of the bundled sample (about 150 users and 140 items after
the 5-core), so a flow run embeds and trains in seconds. All flow tests share one embedding cache: the
first test pays for encoding the ~140 prompts, the others hit the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import write_tiny_catalogue


@pytest.fixture(scope="session")
def flow_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Environment for in-process flows and for every Prefect process the tests start."""
    root = tmp_path_factory.mktemp("flows")
    patch = pytest.MonkeyPatch()
    env = {
        "PREFECT_HOME": root / "prefect-home",
        "FAEREC_DATA_DIR": root / "data",
        "FAEREC_RUNS_DIR": root / "runs",
        "FAEREC_CACHE_DIR": root / "embeddings_cache",
    }
    for name, value in env.items():
        patch.setenv(name, str(value))
    patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    patch.delenv("PREFECT_API_URL", raising=False)
    yield root
    patch.undo()


@pytest.fixture(scope="session")
def tiny_catalogue(flow_root: Path, sample_dir: Path) -> Path:
    return write_tiny_catalogue(sample_dir, flow_root / "tiny")


@pytest.fixture(scope="session")
def ephemeral_prefect(flow_root: Path) -> Iterator[None]:
    """Flows in Prefect's ephemeral mode: a temporary SQLite database and a local API subprocess."""
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = flow_root / "prefect-home"
    with temporary_settings({PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: home / "storage"}):
        with prefect_test_harness(server_startup_timeout=180):
            yield
