"""flows.warm_start: the temporary Prefect server boots beside the imports, and the flow only starts after it."""

from __future__ import annotations

import sys
import threading
import time

import prefect.server.api.server as prefect_server
import pytest

from flows.warm_start import EphemeralServer, import_stage_libraries


class FakeServer:
    """Stands in for SubprocessASGIServer: records the thread and the timeout, takes a while to come up."""

    calls: list[tuple[str, int]] = []
    stopped: int = 0
    fail: bool = False

    def start(self, timeout: int | None = None) -> None:
        FakeServer.calls.append((threading.current_thread().name, timeout))
        time.sleep(0.3)
        if FakeServer.fail:
            raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")

    def stop(self) -> None:
        FakeServer.stopped += 1


@pytest.fixture
def fake_server(monkeypatch):
    FakeServer.calls, FakeServer.stopped, FakeServer.fail = [], 0, False
    monkeypatch.setattr(prefect_server, "SubprocessASGIServer", FakeServer)
    return FakeServer


def test_the_server_starts_in_the_background_and_the_block_waits_for_it(fake_server):
    started = time.perf_counter()
    with EphemeralServer(enabled=True, timeout=42):
        body_done = time.perf_counter() - started  # the body does not wait for the server
    waited = time.perf_counter() - started
    assert body_done < 0.2 <= waited
    assert fake_server.calls == [("prefect-ephemeral-start", 42)]


def test_a_server_that_fails_to_start_fails_the_block(fake_server):
    fake_server.fail = True
    with pytest.raises(RuntimeError, match="Timed out"), EphemeralServer(enabled=True):
        pass


def test_an_error_in_the_block_stops_the_server_without_waiting_for_it(fake_server):
    started = time.perf_counter()
    with pytest.raises(ValueError, match="bad setting"), EphemeralServer(enabled=True):
        raise ValueError("bad setting")
    assert time.perf_counter() - started < 0.2 and fake_server.stopped == 1


def test_disabled_starts_nothing(fake_server):
    with EphemeralServer(enabled=False):
        pass
    assert fake_server.calls == []


def test_stage_libraries_are_imported_and_a_bad_encoder_is_left_to_the_stage(monkeypatch):
    from faerec.text import encoders

    class Quick:
        libraries = ("colorsys",)  # a module nothing else imports

    monkeypatch.setitem(encoders._BUILDERS, "quick", lambda spec, **_: Quick())
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    import_stage_libraries("quick", needs_text=False)
    assert "colorsys" not in sys.modules and "faerec.train.run" in sys.modules
    import_stage_libraries("quick", needs_text=True)
    assert "colorsys" in sys.modules and "faerec.text.embed" in sys.modules
    import_stage_libraries("no-such-encoder:x", needs_text=True)  # the embedding stage reports it, not this


def test_every_registered_local_encoder_names_an_importable_library():
    import importlib.util

    from faerec.text.encoders.hf import HFEncoder
    from faerec.text.encoders.openai_api import OpenAIEncoder
    from faerec.text.encoders.sentence import SentenceTransformerEncoder

    for encoder in (HFEncoder, OpenAIEncoder, SentenceTransformerEncoder):
        assert encoder.libraries and all(importlib.util.find_spec(name) for name in encoder.libraries)
