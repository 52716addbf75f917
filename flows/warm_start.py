"""A faster start for `faerec pipeline`: Prefect's temporary API server boots while the stages' libraries import.

Without PREFECT_API_URL, the first Prefect client call of a flow starts a local server process and waits until
it answers (about 20 s on a 2-core machine, most of it the server's own imports and its database set-up). That
server is a per-process singleton (``prefect.server.api.server.SubprocessASGIServer()``), so starting it
early from a thread is the same server the flow then uses. Leaving the ``with`` block waits for it: the
flow must not talk to a server that is still booting. Leaving it with an exception does not wait: the
server is stopped, and the error reaches the user at once.
"""

from __future__ import annotations

import contextvars
import importlib
import threading
from types import TracebackType
from typing import Any

from faerec.errors import FaerecError


class EphemeralServer:
    """``with EphemeralServer(enabled, timeout): ...`` starts the server on entry and waits for it on exit."""

    def __init__(self, enabled: bool = True, timeout: float = 180) -> None:
        self.enabled = enabled
        self.timeout = timeout
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None  # prefect's SubprocessASGIServer, a per-process singleton

    def _start(self) -> None:
        try:
            self._server.start(timeout=int(self.timeout))
        except BaseException as exc:  # re-raised in the caller's thread on exit
            self.error = exc

    def __enter__(self) -> EphemeralServer:
        if self.enabled:
            # Imported here, not in the thread: beside the caller's imports (torch, the encoder) it is slow, and
            # the server process starts only after it. `faerec pipeline`'s flow began 2.7 s sooner (19.7 against
            # 22.4 s after the command, mean of 4 interleaved runs, 2 cores, database in place).
            from prefect.server.api.server import SubprocessASGIServer

            self._server = SubprocessASGIServer()
            # in a copy of this context, so the server sees the caller's temporary Prefect settings
            self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._start,),
                                            name="prefect-ephemeral-start", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._thread is None:
            return
        if kind is not None:  # the body failed (e.g. a settings error): no flow will run, so do not wait
            self._server.stop()  # a server process already started is ended now, not left to atexit
            return
        self._thread.join()
        if self.error is not None:
            raise self.error


def import_stage_libraries(encoder: str, needs_text: bool) -> None:
    """Import what the stages would import on first use: the trainer and evaluator, and, when a method needs
    item texts, the embedding stage and its encoder's library (``Encoder.libraries``). Nothing is loaded
    or computed, so a run whose stages all come from the cache loses nothing. A spec that cannot be built is
    left for the embedding stage to report."""
    importlib.import_module("faerec.train.run")
    if not needs_text:
        return
    importlib.import_module("faerec.text.embed")
    from faerec.text.encoders import build_encoder

    try:
        libraries = build_encoder(encoder).libraries
    except FaerecError:
        return
    for name in libraries:
        importlib.import_module(name)
