"""The server's log: one access line per request, as text or as JSON lines.

Every request gets one :class:`RequestRecord` (set by :class:`mediagate.frontdoor.FrontDoor` in a
context variable). Code that learns something the operator should see fills it in: the dialect's
error renderer calls :func:`note_refusal` with the error it answers, the gateway calls
:func:`note_bucket` when a request's credentials name its bucket. When the response is done the
front door writes the record as one line on the ``mediagate.access`` logger:

    access rid=… dialect=upyun-rest bucket=photos method=PUT path=/photos/a.jpg status=401 ms=2.1
    reason="signature_mismatch: the signature does not match"

Never a secret: the query string is left out (it carries signatures and tokens), no header is
logged, and a reason is the error's code and its client-safe message; for a 5xx the cause adds
only the failing component's exception type and the first line of its message.

Level: INFO for answers below 500, WARNING for 503/507 (a dependency is down), ERROR for any other
5xx (a bug), DEBUG for a passing health check; the traceback of an unexpected exception is added
only when DEBUG is enabled.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from mediagate.core.errors import MediagateError, from_os_error

LogFormat = Literal["text", "json"]

access_log = logging.getLogger("mediagate.access")

_HANDLER_MARK = "_mediagate_handler"
MAX_FIELD = 300
"""Longest value logged for a path or reason (a hostile client chooses them)."""


@dataclass
class RequestRecord:
    """What the access line says about one request."""

    request_id: str
    method: str
    path: str
    dialect: str = "-"
    bucket: str = ""
    started: float = field(default_factory=time.monotonic)
    reason: str = ""
    cause: str = ""
    exc: BaseException | None = None
    code: str = ""
    """The stable code of the error answered (``mediagate_errors_total``)."""
    uploads: list[tuple[str, int]] = field(default_factory=list)
    """(outcome, bytes) of each upload the core saw in this request (``mediagate_uploads_total``)."""
    body_size: int | None = None
    """The declared length of a raw (not multipart) request body: an upload's size before a
    byte is read (quota checks)."""
    retry_after: int | None = None
    """Seconds a refused client should wait (``Retry-After`` on a 429)."""
    callers: list[tuple[str, str]] = field(default_factory=list)
    """(``key`` or ``token``, its public id) that authenticated the request (per-caller limits)."""
    quota_admitted: bool = False
    """The request's upload passed admission (core.quotas): once per request."""

    def fields(self, status: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rid": self.request_id,
            "dialect": self.dialect,
            "bucket": self.bucket or "-",
            "method": self.method,
            "path": _clip(self.path),
            "status": status,
            "ms": round((time.monotonic() - self.started) * 1000, 1),
        }
        if status >= 400:
            out["reason"] = _clip(self.reason or "-")
            if self.cause:
                out["cause"] = _clip(self.cause)
        return out


_current: ContextVar[RequestRecord | None] = ContextVar("mediagate_request", default=None)


def begin(record: RequestRecord) -> None:
    _current.set(record)


def current() -> RequestRecord | None:
    return _current.get()


def note_refusal(exc: MediagateError) -> None:
    """The error this request is answered with (called by each dialect's renderer)."""
    record = _current.get()
    if record is None:
        return
    record.reason = f"{exc.code}: {exc.message}"
    record.code = exc.code
    record.retry_after = getattr(exc, "retry_after", None)
    if exc.status >= 500 and exc.__cause__ is not None:
        record.cause = describe(exc.__cause__)


def note_upload(outcome: str, size: int) -> None:
    """An upload's outcome (``stored``, ``refused``, ``failed``), noted by the core at its commit or
    refusal point; the front door counts it with the request's dialect (mediagate.metrics)."""
    record = _current.get()
    if record is not None:
        record.uploads.append((outcome, size))


def note_upload_failure(exc: BaseException, size: int) -> None:
    """:func:`note_upload` for an upload that ended in ``exc``: ``refused`` for the client's
    fault (a 4xx: too large, over quota, a bad checksum …), ``failed`` for anything else."""
    error = exc if isinstance(exc, MediagateError) else from_os_error(exc)
    note_upload("refused" if error is not None and error.status < 500 else "failed", size)


def note_caller(kind: str, caller_id: str) -> None:
    """The API key (``key``) or upload token (``token``) that authenticated this request, by its
    public id (never its secret): its own rate limit applies (core.quotas)."""
    record = _current.get()
    if record is not None and (kind, caller_id) not in record.callers:
        record.callers.append((kind, caller_id))


def note_bucket(name: str) -> None:
    """The bucket the request's credentials belong to (Wantu and ImageX name it by key only)."""
    record = _current.get()
    if record is not None and not record.bucket:
        record.bucket = name


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``: enough to tell which component failed and how, without
    the SQL parameters or response bodies that later lines of some messages carry."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def is_outage(exc: BaseException) -> bool:
    """A dependency down or a disk full (503/507), as opposed to a bug."""
    error = exc if isinstance(exc, MediagateError) else from_os_error(exc)
    return error is not None and error.status in (503, 507)


def write_access(record: RequestRecord, status: int) -> None:
    level = logging.INFO if status < 500 else logging.WARNING if status in (503, 507) else logging.ERROR
    if record.dialect == "ops" and status < 400:
        level = logging.DEBUG  # a load balancer's health checks, every few seconds: not news
    if not access_log.isEnabledFor(level):
        return
    exc_info = record.exc if record.exc is not None and access_log.isEnabledFor(logging.DEBUG) else None
    access_log.log(level, "access", extra={"fields": record.fields(status)}, exc_info=exc_info)


def _clip(value: str) -> str:
    return value if len(value) <= MAX_FIELD else value[:MAX_FIELD] + "…"


# -- formatting ---------------------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger> <message> key=value …``; values with spaces are quoted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra: dict[str, Any] = getattr(record, "fields", {})
        if not extra:
            return line
        head, sep, tail = line.partition("\n")  # a traceback (debug only) stays after the fields
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in extra.items())
        return f"{head} {pairs}{sep}{tail}"


def _text_value(value: object) -> str:
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    return json.dumps(text, ensure_ascii=True)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(log_format: LogFormat = "text", level: str = "info") -> None:
    """Give the ``mediagate`` logger its one stderr handler (once per process; a second call only
    changes format and level). Records do not propagate to the root logger, so a host application's
    or uvicorn's handlers never print them twice."""
    logger = logging.getLogger("mediagate")
    handler = next((h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger.setLevel(level.upper())
    logger.propagate = False


class FailureStreak:
    """A background job's failures, logged the way an operator can read them: a dependency outage
    (a core error with status 503/507) once when it starts, as one line naming the cause, and once
    when the job works again; anything else is a bug and keeps its traceback every time."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        error = exc if isinstance(exc, MediagateError) else from_os_error(exc)
        if error is None or not is_outage(error):
            self.logger.exception("%s failed", self.what, exc_info=exc)
            return
        if not self.failing:
            cause = error.__cause__ if error is exc else exc
            detail = f" ({describe(cause)})" if cause is not None else ""
            self.logger.warning("%s failed: %s: %s%s", self.what, error.code, error.message, detail)
        self.failing = True

    def succeeded(self) -> None:
        if self.failing:
            self.logger.warning("%s works again", self.what)
        self.failing = False


class Throttled:
    """One kind of log line a client can cause at will (a malformed request, a corrupt image, a
    callback URL that fails): at most ``limit`` lines per ``window`` seconds, so that a hostile or
    broken client cannot flood the log (and the disk) at the request rate. Lines over the limit
    are counted, and the first line of the next window says how many were left out."""

    def __init__(self, logger: logging.Logger, limit: int = 10, window: float = 60.0) -> None:
        self.logger = logger
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._started = -window
        self._written = 0
        self._dropped = 0

    def log(self, level: int, msg: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            dropped = 0
            if now - self._started >= self.window:
                self._started, self._written = now, 0
                dropped, self._dropped = self._dropped, 0
            if self._written >= self.limit:
                self._dropped += 1
                return
            self._written += 1
        if dropped:
            msg += " (and %s more like it in the %g s before, not logged)"
            args = (*args, dropped, self.window)
        self.logger.log(level, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        self.log(logging.INFO, msg, *args)


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's ``log_config`` for ``mediagate serve``: its own lines (start-up, shutdown, protocol
    warnings) in the same format as ours, so a JSON log is JSON throughout; its access log off."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mediagate": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "mediagate",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
