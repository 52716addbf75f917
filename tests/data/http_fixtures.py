"""A real HTTP server on 127.0.0.1 for download tests: serves in-memory files, honours Range requests, and
can misbehave on purpose (drop the connection mid-body, ignore Range, omit Content-Length, fail)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    drop_after: int | None = None  # first request only: send this many body bytes, then close the socket
    ignore_range: bool = False  # answer 200 with the whole body even when a Range is asked for
    send_length: bool = True
    status: int | None = None  # answer every request with this error status


@dataclass
class Hit:
    path: str
    range: str | None
    status: int


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    base_url: str = ""

    def add(self, path: str, data: bytes, **behaviour: object) -> str:
        """Serve ``data`` at ``path`` (e.g. "/amazon2014/meta_Beauty.json.gz"); return its full URL."""
        self.files[path] = Served(data, **behaviour)  # type: ignore[arg-type]
        return self.base_url + path

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


def start_server() -> tuple[FileServer, ThreadingHTTPServer]:
    state = FileServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            served = state.files.get(self.path)
            asked = self.headers.get("Range")
            if served is None or served.status is not None:
                status = 404 if served is None else served.status
                self._record(asked, status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", asked or "")
            if match and not served.ignore_range:
                start = int(match.group(1))
                if start >= len(served.data):
                    self._record(asked, 416)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(served.data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(served.data) - 1}/{len(served.data)}")
                status = 206
            else:
                self.send_response(200)
                status = 200
            body = served.data[start:]
            self._record(asked, status)
            if served.send_length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            with lock:
                drop, served.drop_after = served.drop_after, None
            if drop is not None:
                self.wfile.write(body[:drop])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)
            if not served.send_length:
                self.close_connection = True

        def _record(self, asked: str | None, status: int) -> None:
            with lock:
                state.hits.append(Hit(self.path, asked, status))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return state, server
