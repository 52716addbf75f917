"""Fixtures of the data tests: a real HTTP file server on 127.0.0.1 (tests/data/http_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from http_fixtures import FileServer, start_server


@pytest.fixture
def server() -> Iterator[FileServer]:
    state, httpd = start_server()
    yield state
    httpd.shutdown()
    httpd.server_close()
