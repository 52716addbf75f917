"""A local OpenAI-compatible embeddings server for tests: POST /v1/embeddings, deterministic vectors, faults.

Faults are queued actions consumed one per request: ("429", retry_after_s), ("500",), ("slow", seconds),
("malformed",) (200 with a broken JSON body), ("short",) (200 with one vector too few), ("400",).
``fail_after`` makes every request after the first N answer 500 (a server that goes down mid-job).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def vector_for(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


@dataclass
class Request:
    inputs: list[str]
    authorization: str
    encoding_format: str | None
    dimensions: int | None
    at: float
    action: tuple | None


@dataclass
class StubState:
    dim: int = 16
    faults: list[tuple] = field(default_factory=list)
    fail_after: int | None = None
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self) -> tuple | None:
        with self.lock:
            if self.fail_after is not None and len(self.requests) >= self.fail_after:
                return ("500",)
            return self.faults.pop(0) if self.faults else None


class _Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length))
        if self.path != "/v1/embeddings":
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        inputs = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
        action = self.state.next_action()
        with self.state.lock:
            self.state.requests.append(
                Request(inputs, self.headers.get("Authorization", ""), payload.get("encoding_format"),
                        payload.get("dimensions"), time.monotonic(), action)
            )
        error = b'{"error": {"message": "injected", "type": "server_error"}}'
        if action and action[0] == "429":
            self._send(429, error, {"Retry-After": str(action[1])})
            return
        if action and action[0] == "500":
            self._send(500, error)
            return
        if action and action[0] == "400":
            self._send(400, error)
            return
        if action and action[0] == "slow":
            time.sleep(action[1])
        if action and action[0] == "malformed":
            self._send(200, b'{"object": "list", "data": [{"embedding": [0.1, ')
            return
        dim = payload.get("dimensions") or self.state.dim
        data = []
        for i, text in enumerate(inputs):
            vec = vector_for(text, dim)
            if payload.get("encoding_format") == "base64":
                embedding = base64.b64encode(vec.astype("<f4").tobytes()).decode()
            else:
                embedding = vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        if action and action[0] == "short":
            data = data[:-1]
        data.reverse()  # clients must order by "index", not by position
        body = {"object": "list", "data": data, "model": payload["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        self._send(200, json.dumps(body).encode())


class OpenAIStub:
    def __init__(self, dim: int = 16) -> None:
        self.state = StubState(dim=dim)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
