"""``GET /metrics``: the server's Prometheus metrics (prometheus-client's text format).

What is counted, and where:

* ``mediagate_uploads_total`` / ``mediagate_upload_bytes_total`` by ``dialect`` and ``outcome``
  (``stored``, ``refused``, ``failed``): the core notes each upload's outcome on its request record
  at its commit or refusal point (:func:`mediagate.logs.note_upload`), and the front door counts
  them when the request ends, labelled with the dialect the routing table gave the request. A new
  dialect is counted as soon as ``frontdoor.face_of`` names it; nothing here changes.
* ``mediagate_request_duration_seconds`` (histogram) by ``dialect`` and status class (``2xx`` …),
  ``mediagate_errors_total`` by ``dialect`` and the error's stable ``code``. Labels are always from
  small fixed sets: never a key, a bucket or a path.
* At scrape time, from the catalog (so every node and worker reports the same truth):
  ``mediagate_upload_sessions_open`` by dialect, ``mediagate_tasks`` by ``status`` and ``kind``,
  ``mediagate_deliveries`` by ``state`` (``pending``, ``failed``, ``delivered``).

Several worker processes (``serve --workers N``, N > 1): prometheus-client's multiprocess mode. ``serve``
points ``PROMETHEUS_MULTIPROC_DIR`` at ``<home>/metrics``, emptied at each start (see
:func:`mediagate.cli.home.metrics_dir`), before any worker imports prometheus-client; each worker writes
its counters to its own files there and a scrape, answered by any worker, sums them all. Without
it (one process under plain uvicorn) the process's own registry is served.

``metrics_token`` (``MEDIAGATE_METRICS_TOKEN``): when set, a scrape must say
``Authorization: Bearer <token>``; unset, ``/metrics`` is open like ``/healthz`` (the figures name no
bucket, key or path).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterator

from anyio import to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from starlette.requests import Request
from starlette.responses import Response

from mediagate import logs
from mediagate.core.errors import Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.http import gateway
from mediagate.serving import error_response

log = logging.getLogger("mediagate")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

MULTIPROCESS = prometheus_values.ValueClass is not prometheus_values.MutexValue
"""Whether this process writes its metrics to the shared directory: decided by prometheus-client
when it was first imported (so from the environment at that moment), and read here from it."""

UPLOADS = Counter(
    "mediagate_uploads", "Uploads that reached the core, by dialect and outcome.", ["dialect", "outcome"]
)
UPLOAD_BYTES = Counter(
    "mediagate_upload_bytes",
    "Bytes of those uploads (stored: the bytes sent; refused or failed: the bytes received by then).",
    ["dialect", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "mediagate_request_duration_seconds",
    "Time from a request's head to the end of its answer, by dialect and status class.",
    ["dialect", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ERRORS = Counter(
    "mediagate_errors", "Error answers, by dialect and the error's stable code.", ["dialect", "code"]
)

_CODE = re.compile(r"[A-Za-z0-9_.]{1,48}")


def family(dialect: str) -> str:
    """The metric label of a front-door dialect: ``upyun-rest`` and ``upyun-form`` are ``upyun``."""
    return dialect.partition("-")[0] or "-"


def observe(record: logs.RequestRecord, status: int, seconds: float) -> None:
    """Count one finished request (called once per request by the front door)."""
    dialect = family(record.dialect)
    REQUEST_SECONDS.labels(dialect, f"{status // 100}xx").observe(seconds)
    for outcome, size in record.uploads:
        UPLOADS.labels(dialect, outcome).inc()
        UPLOAD_BYTES.labels(dialect, outcome).inc(size)
    if status >= 400:
        # the error's stable code; an answer no error renderer noted (a framework's) by its status
        code = record.code if _CODE.fullmatch(record.code) else "other" if record.code else str(status)
        ERRORS.labels(dialect, code).inc()


class CatalogCollector(Collector):
    """The gauges read from the catalog at scrape time (see the module docstring). A catalog that
    cannot answer leaves them out and says so in ``mediagate_catalog_scrape_ok``."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily("mediagate_catalog_scrape_ok", "1 if the catalog answered this scrape.")
        try:
            counts = self.gw.catalog.operations_counts()
        except Exception as exc:
            log.warning("metrics: the catalog did not answer: %s", logs.describe(exc))
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        sessions = GaugeMetricFamily(
            "mediagate_upload_sessions_open",
            "Multi-part upload sessions open, by dialect.",
            labels=["dialect"],
        )
        for dialect, n in counts.sessions:
            sessions.add_metric([dialect], n)
        yield sessions
        tasks = GaugeMetricFamily(
            "mediagate_tasks",
            "Asynchronous tasks in the catalog, by status and kind.",
            labels=["status", "kind"],
        )
        for status, kind, n in counts.tasks:
            tasks.add_metric([status, kind], n)
        yield tasks
        deliveries = GaugeMetricFamily(
            "mediagate_deliveries", "Notifications in the catalog, by state.", labels=["state"]
        )
        for state, n in counts.deliveries:
            deliveries.add_metric([state], n)
        yield deliveries


def render(gw: Gateway) -> bytes:
    """The text a scrape gets (blocking: reads the catalog and, in multiprocess mode, the files)."""
    catalog = CollectorRegistry(auto_describe=False)
    catalog.register(CatalogCollector(gw))
    if MULTIPROCESS:
        shared = CollectorRegistry()
        MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
        return generate_latest(shared) + generate_latest(catalog)
    return generate_latest(REGISTRY) + generate_latest(catalog)


async def endpoint(request: Request) -> Response:
    gw = gateway(request)
    token = gw.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            exc = Unauthorized("/metrics needs Authorization: Bearer <metrics_token>")
            logs.note_refusal(exc)
            return error_response(exc.status, exc.message)
    body = await to_thread.run_sync(render, gw)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
