"""Small hand-made datasets for the evaluator tests."""

from __future__ import annotations

import pytest
from builders import dataset_from_sequences


@pytest.fixture
def make_dataset():
    return dataset_from_sequences


@pytest.fixture(autouse=True)
def _single_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (tests/conftest.py says why)."""
