"""The FastAPI application: ``create_app(settings)`` wires the routers, the error mapping (one place),
request-size limits, CORS and request metrics around one :class:`ServingService`."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from spxcast import __version__
from spxcast.config import Settings
from spxcast.db import connect
from spxcast.errors import SpxcastError
from spxcast.serving.errors import DeployRefused, InvalidInput, NoModel, NotFound
from spxcast.serving.features import FeatureSource
from spxcast.serving.live.hub import StreamHub
from spxcast.serving.loading import VersionLoader
from spxcast.serving.routers import (
    admin,
    bars,
    explain,
    health,
    history,
    models,
    monitoring,
    news,
    predict,
    stream,
)
from spxcast.serving.service import ServingService
from spxcast.serving.telemetry import Telemetry

log = logging.getLogger(__name__)

STATUS: dict[type[SpxcastError], int] = {NotFound: 404, InvalidInput: 422, NoModel: 503, DeployRefused: 409}
"""Domain error -> HTTP status; any other SpxcastError is a 500 with its message."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def build_service(settings: Settings, source: FeatureSource | None = None) -> ServingService:
    """The service of ``settings``: app database (migrated), in-memory features (``source``, default the
    gold rows), registry loader, metrics."""
    engine = connect(settings.db_url(), settings.db.sqlite_busy_timeout_ms)
    source = source or FeatureSource(settings)
    return ServingService(settings, source, VersionLoader(settings, source), engine, Telemetry())


SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval of a server process (CPython's default is 5 ms): how long the event loop (or the live
loop) can wait for the GIL while a background thread (the prediction log's writer, the sync thread, the live
loop's commit, feature store and Redis threads) holds it."""


def tune_as_server(service: ServingService) -> None:
    """This process is a dedicated server (``spxcast serve``, ``spxcast live``): the service keeps its
    long-lived heap out of the garbage collector's full passes (:attr:`ServingService.freeze_heap`, applied
    when it starts) and the GIL switch interval is :data:`SWITCH_INTERVAL_S`. Call before the service
    starts."""
    service.freeze_heap = True
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def create_app(settings: Settings, service: ServingService | None = None, *, server: bool = False) -> FastAPI:
    """The API for ``settings``; ``service`` (already built, not started) replaces the default one.

    ``server``: this process is a dedicated server (``spxcast serve``), so the interpreter is tuned for
    request latency (:func:`tune_as_server`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = service or build_service(settings)
        if server:
            tune_as_server(built)
        app.state.service = built.start()
        app.state.telemetry = built.telemetry
        try:
            yield
        finally:
            built.close()
            built.telemetry.close()

    app = FastAPI(
        title="spxcast",
        version=__version__,
        summary="Point-in-time S&P 500 forecasts with calibrated intervals, blue/green slots and a full log.",
        lifespan=lifespan,
        # Metrics are Prometheus (/metrics); FastAPI's native OpenTelemetry hooks would otherwise look up
        # the global OTel providers on every request (~5 % of /predict's CPU) to find none configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.hub = StreamHub(settings.live.client_queue)  # the live stream; fed by a loop or a relay
    for module in (predict, explain, history, bars, news, models, health, admin, monitoring, stream):
        app.include_router(module.router)
    _error_handlers(app)
    if settings.serving.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.serving.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Client-Key"],
        )
    routes = {getattr(r, "path", "") for r in app.routes}
    app.add_middleware(_Observed, routes=routes)
    app.add_middleware(_BodyLimit, max_bytes=settings.serving.max_request_bytes)
    return app


def _error(status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SpxcastError)
    async def domain(_: Request, exc: SpxcastError) -> JSONResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
        return _error(status, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return _error(422, "invalid request", jsonable_encoder(errors))

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http error", exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s %s", incident, request.method, request.url.path)
        return _error(
            500, "internal error", f"unexpected {type(exc).__name__}; logged as incident {incident}"
        )


class _TooLarge(Exception):
    pass


class _BodyLimit:
    """413 for request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except _TooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(413, "request too large", f"request bodies are limited to {self.max_bytes} bytes")
        await response(scope, receive, send)


class _Observed:
    """Latency histogram and error counter per route template (unknown paths count as ``other``)."""

    def __init__(self, app: ASGIApp, routes: set[str]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            path = scope["path"] if scope["path"] in self.routes else "other"
            telemetry = getattr(scope["app"].state, "telemetry", None) if "app" in scope else None
            if telemetry is not None:
                telemetry.observe(path, scope["method"], status, time.perf_counter() - started)


def app_from_environment() -> FastAPI:
    """uvicorn's factory for worker processes: settings from spxcast.toml and SPXCAST_* variables."""
    from spxcast.config import load_settings

    return create_app(load_settings(), server=True)
