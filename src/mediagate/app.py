"""ASGI app factory: one port, every dialect (see ``routing`` for the table)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate import logs, redisconn, routing
from mediagate.config import Settings
from mediagate.core.gateway import Gateway
from mediagate.frontdoor import FrontDoor
from mediagate.services import build_gateway

log = logging.getLogger("mediagate")

MAINTENANCE_INTERVAL = 30.0


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    streak = logs.FailureStreak(log, f"background job {name}")
    while True:
        try:
            await job()
        except Exception as exc:
            streak.failed(exc)
        else:
            streak.succeeded()
        await asyncio.sleep(seconds)


def gc_interval(settings: Settings) -> float:
    """Seconds between collector rounds: often enough that a replaced version is gone within
    about twice ``garbage_grace_seconds`` (one minute by default)."""
    return min(MAINTENANCE_INTERVAL, max(1.0, settings.garbage_grace_seconds))


GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default is 700)."""


_heap_settled = False


def settle_heap() -> None:
    """Move everything the start-up made (modules, the routing table, SQLAlchemy's and pydantic's
    machinery: ~150,000 objects) out of the cyclic collector's sight, and collect the young
    generation less often.

    Under bench/small.py the collector had cost ~0.15 ms per upload, most of it in full
    collections that walked the whole start-up heap (~80 ms each, stalling every request in
    flight); frozen, those take ~2 ms. Objects made later are collected as before. Once per
    process: a later app (tests build many) must not freeze what the earlier ones left."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def create_app(settings: Settings | None = None, *, gateway: Gateway | None = None) -> Starlette:
    gw = gateway or build_gateway(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from mediagate.core import notify

        await to_thread.run_sync(gw.clean_staging)  # only what no live process owns (core.staging)
        tasks = [
            asyncio.create_task(
                _every(gc_interval(gw.settings), lambda: to_thread.run_sync(gw.collect_garbage), "gc")
            ),
            asyncio.create_task(notify.delivery_loop(gw)),
        ]
        engine = None
        if gw.settings.run_workers:  # asynchronous tasks (mediagate.tasks); `serve --no-worker` skips
            from mediagate.services import build_task_engine

            engine = build_task_engine(gw)
            engine.start(asyncio.get_running_loop())
        settle_heap()
        try:
            yield
        finally:
            if engine is not None:
                await to_thread.run_sync(engine.stop)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await notify.close()
            gw.quotas.close()
            redisconn.close_shared(app.state)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        # Outside every middleware (Starlette's outermost layer), so it says nosniff itself.
        return JSONResponse(
            {"code": 500, "message": "internal error"},
            status_code=500,
            headers={"X-Content-Type-Options": "nosniff", "Connection": "close"},
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        """The framework's own refusals (the routing table leaves none, but a future row might): JSON
        like every other answer, never Starlette's plain text."""
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"code": exc.status_code, "message": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    app = Starlette(
        routes=routing.routes(),
        middleware=[Middleware(FrontDoor)],
        lifespan=lifespan,
        exception_handlers={Exception: server_error, HTTPException: http_error},
    )
    app.state.gateway = gw
    return app


def app_from_env() -> Starlette:
    """``uvicorn --factory mediagate.app:app_from_env`` entry point (settings from the env). A
    start-up problem (see :mod:`mediagate.startup`) is one log line and exit status 1."""
    settings: Settings | None = None
    try:
        settings = Settings()
        logs.configure(settings.log_format, settings.log_level)
        return create_app(settings)
    except Exception as exc:
        from mediagate.startup import explain

        problem = explain(exc, settings)
        if problem is None:
            raise
        if settings is None:
            logs.configure()
        log.error("cannot start: %s", problem)
        raise SystemExit(1) from None
