"""A notification as the CLI and the /v1 API show it: where it goes and how it went, never what it
carries (bodies and header values hold signatures)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mediagate.core.values import Delivery, DeliveryAttempt


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def shown_url(url: str) -> str:
    """The URL without a user:password part (the query is the customer's own address)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
    except ValueError:
        return "<invalid url>"
    return urlunsplit(parts._replace(netloc=netloc))


def attempt_json(a: DeliveryAttempt) -> dict[str, Any]:
    return {"attempt": a.number, "at": _when(a.at), "ok": a.ok, "status_code": a.status, "error": a.error}


def delivery_json(
    d: Delivery, bucket: str | None, history: Sequence[DeliveryAttempt] | None = None
) -> dict[str, Any]:
    """The listing's row; with ``history`` (newest first) also ``"history"``: one entry per kept
    try (``show`` and ``GET /v1/deliveries/{id}``)."""
    shown = {
        "id": d.id,
        "status": d.state,
        "bucket": bucket,
        "url": shown_url(d.url),
        "method": d.method,
        "attempts": d.attempts,
        "last_status_code": d.last_status,
        "last_error": d.last_error,
        "next_attempt_at": _when(d.next_attempt_at) if d.state == "pending" else None,
        "created_at": _when(d.created_at),
        "delivered_at": _when(d.delivered_at),
        "headers": sorted([*(str(name) for name in (d.headers or {})), *_signed_at_send(d)]),
    }
    if history is not None:
        shown["history"] = [attempt_json(a) for a in history]
    return shown


def _signed_at_send(d: Delivery) -> list[str]:
    """The headers each attempt adds when it is signed as it is sent (core.webhooks)."""
    if d.signing == "webhook":
        return ["X-Mediagate-Delivery", "X-Mediagate-Signature"]
    return []
