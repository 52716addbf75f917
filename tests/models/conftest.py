"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
from models_fixtures import make_world


@pytest.fixture
def world():
    return make_world()
