"""Health endpoints for load balancers and orchestrators.

* ``GET /livez``: the process answers HTTP. Touches nothing else, so a database or storage outage
  never gets a healthy process restarted (restarting would not bring the database back).
* ``GET /healthz``: can this process serve uploads right now? One cheap call to each dependency
  (a catalog point read, a storage existence check, a Redis PING when ``MEDIAGATE_REDIS_URL`` is
  set) and a look at the free space where uploads are staged, each bounded by ``CHECK_SECONDS``:
  200 ``{"status": "ok", "catalog": "ok", "storage": "ok", "disk": "ok"}`` (plus ``"redis": "ok"``
  with Redis), or 503 with
  ``"status": "unavailable"`` and the failing one's client-safe message in its field. The cause
  (which may name hosts and ports) goes to the log line only, never to the anonymous caller.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import anyio
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate import logs, redisconn
from mediagate.core.errors import (
    CatalogUnavailable,
    InsufficientStorage,
    MediagateError,
    RedisUnavailable,
    StorageUnavailable,
    from_os_error,
)
from mediagate.core.gateway import Gateway
from mediagate.http import gateway

CHECK_SECONDS = 5.0
MIN_FREE_BYTES = 1024 * 1024
"""Less free space than this where uploads are staged, and no upload of any size can be taken."""
PROBE_BLOB = "mediagate-health-probe"
"""A blob id no upload ever gets (ids are hex uuids): asking whether it exists reaches the store."""


async def livez(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def healthz(request: Request) -> Response:
    gw = gateway(request)
    checks = {
        "catalog": _check(lambda: gw.catalog.get_bucket(""), CatalogUnavailable),
        "storage": _check(lambda: gw.storage.exists(PROBE_BLOB), StorageUnavailable),
        "disk": _check(lambda: _staging_space(gw), InsufficientStorage),
    }
    if (client := redisconn.shared(request.app.state, gw.settings)) is not None:
        checks["redis"] = _check(lambda: redisconn.ping(client), RedisUnavailable)
    results = await asyncio.gather(*checks.values())
    body: dict[str, str] = {}
    failures: list[str] = []
    for name, error in zip(checks, results, strict=True):
        body[name] = "ok" if error is None else f"unavailable: {error.message}"
        if error is not None:
            failures.append(name)
            _note(name, error)
    body = {"status": "unavailable" if failures else "ok", **body}
    return JSONResponse(body, status_code=503 if failures else 200)


async def _check(probe: Callable[[], object], outage: type[MediagateError]) -> MediagateError | None:
    """None when ``probe`` answers in time; else the error a client would get for this outage."""
    try:
        with anyio.fail_after(CHECK_SECONDS):
            await to_thread.run_sync(probe, abandon_on_cancel=True)
    except MediagateError as exc:
        return exc
    except TimeoutError:
        return outage(f"no answer within {CHECK_SECONDS:g} s")
    except Exception as exc:  # a failure the backend did not classify: still "down", for the check
        error = from_os_error(exc) or outage()
        error.__cause__ = exc
        return error
    return None


def _staging_space(gw: Gateway) -> None:
    free = shutil.disk_usage(gw.staging_dir).free
    if free < MIN_FREE_BYTES:
        raise InsufficientStorage(f"no space left where uploads are staged ({free} bytes free)")


def _note(name: str, error: MediagateError) -> None:
    record = logs.current()
    if record is None:
        return
    cause = f" ({logs.describe(error.__cause__)})" if error.__cause__ is not None else ""
    record.reason = "; ".join(filter(None, [record.reason, f"{name}: {error.message}{cause}"]))
