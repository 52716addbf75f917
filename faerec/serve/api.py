"""``faerec api RUN``: an HTTP API over a finished run (FastAPI + uvicorn; both are imported here only).

    GET  /health                              {"status": "ok", run facts}
    GET  /recommend?user_id=ID&k=10           top-k for a user of the run's dataset (history excluded)
    POST /recommend {"history": [...], "k"}   top-k for a user the model never saw, from an item history
    GET  /similar?item_id=ID&k=10             nearest items by cosine in the item table

The model and its item table are loaded once, at start-up (faerec.serve.recommend.Recommender); answers are
the ones `faerec recommend` writes for the same user. Every bad request (unknown id, k out of range,
malformed JSON, empty history, wrong parameter types) gets a 4xx JSON answer ``{"error": "...", "status": N}``
that names the problem, and is logged; an unexpected error answers 500 the same way. Nothing a client sends
stops the server. It listens on the loopback interface unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faerec.errors import FaerecError
from faerec.serve.recommend import Recommender, UnknownId
from faerec.serve.similar import ItemSimilarity

log = logging.getLogger("faerec.serve.api")

DEFAULT_K = 10
MAX_BODY_BYTES = 1 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(request: Request, status: int, message: str) -> JSONResponse:
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, message)
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _k(value: Any, check) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, f"k must be an integer, got {value!r}")
    try:
        return check(value)
    except FaerecError as exc:
        raise ApiError(422, str(exc)) from None


def _items(rec: Recommender, top, include_title: bool = True) -> list[dict[str, Any]]:
    rows = rec.rows(top)
    titles = rec.catalogue.titles
    index = rec.catalogue.item_index
    return [{"item_id": item_id, "score": float(score), "rank": int(rank),
             **({"title": titles[index[item_id]]} if include_title else {})}
            for item_id, score, rank in zip(rows["item_id"], rows["score"], rows["rank"], strict=True)]


def create_app(rec: Recommender) -> FastAPI:
    """The FastAPI application around a loaded Recommender."""
    similarity = ItemSimilarity(rec)
    lock = threading.Lock()  # one scoring pass at a time: torch already uses every core for one
    app = FastAPI(title="faerec", summary="Recommendations from a trained faerec run", version="1")
    facts = rec.describe()

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(request, exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            problems.append(f"parameter {where!r}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error(request, 422, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(request, 500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", **facts}

    @app.get("/recommend")
    async def recommend_user(user_id: str, k: int = DEFAULT_K) -> dict[str, Any]:
        k = _k(k, rec.check_k)
        try:
            idx = rec.user_indices([user_id])
        except UnknownId as exc:
            raise ApiError(404, str(exc)) from None
        with lock:
            top = rec.for_users(idx, k)
        return {"user_id": user_id, "k": k, "history_excluded": True, "items": _items(rec, top)}

    @app.post("/recommend")
    async def recommend_history(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"malformed JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(422, f"the body must be a JSON object {{\"history\": [...], \"k\": N}}, got "
                                f"{type(body).__name__}")
        unknown = sorted(set(body) - {"history", "k"})
        if unknown:
            raise ApiError(422, f"unknown field(s) {unknown}; expected 'history' and optionally 'k'")
        history = body.get("history")
        if not isinstance(history, list):
            raise ApiError(422, "'history' must be a list of item ids (oldest first)")
        if not history:
            raise ApiError(422, "'history' is empty: give at least one item id")
        if not all(isinstance(i, str | int) and not isinstance(i, bool) for i in history):
            raise ApiError(422, "'history' must hold item ids (strings or integers)")
        k = _k(body.get("k", DEFAULT_K), rec.check_k)
        try:
            items = rec.item_indices([str(i) for i in history])
        except UnknownId as exc:
            raise ApiError(404, str(exc)) from None
        if not (items <= rec.scoring.n_trained).any():
            raise ApiError(422, "'history' holds no item the model was trained on (only candidate-only items), "
                                "so the sequence encoder has no input")
        with lock:
            top = rec.for_history(items, k)
        return {"k": k, "history_length": len(history), "history_excluded": True, "items": _items(rec, top)}

    @app.get("/similar")
    async def similar(item_id: str, k: int = DEFAULT_K) -> dict[str, Any]:
        k = _k(k, similarity.check_k)
        try:
            with lock:
                items = similarity.similar(item_id, k)
        except UnknownId as exc:
            raise ApiError(404, str(exc)) from None
        return {"item_id": item_id, "k": k, "measure": "cosine", "items": items}

    return app


def _uvicorn_config(app: FastAPI, host: str, port: int, log_level: str):
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")


def serve(rec: Recommender, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> dict[str, Any]:
    """Serve until interrupted (Ctrl-C / SIGTERM); returns what was served."""
    import sys

    import uvicorn

    _log_to_stderr()
    started = time.perf_counter()
    server = uvicorn.Server(_uvicorn_config(create_app(rec), host, port, log_level))
    print(f"faerec api: serving {rec.run.run_dir} on http://{host}:{port} (GET /health, /recommend, /similar; "
          "POST /recommend)", file=sys.stderr, flush=True)
    server.run()
    return {"run_dir": str(rec.run.run_dir), "url": f"http://{host}:{port}", "stopped": True,
            "seconds": round(time.perf_counter() - started, 1)}


@contextmanager
def serve_in_thread(rec: Recommender, host: str = "127.0.0.1", port: int = 0,
                    log_level: str = "warning", timeout: float = 30.0) -> Iterator[str]:
    """Run the API in a background thread (tests, benchmarks); yields its base URL, stops it on exit.
    ``port`` 0 picks a free port."""
    import socket

    import uvicorn

    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(create_app(rec), host, port, log_level))
    thread = threading.Thread(target=server.run, name="faerec-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API server did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


def _log_to_stderr() -> None:
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("faerec api: %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
