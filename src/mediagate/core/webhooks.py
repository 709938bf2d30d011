"""Webhooks: what mediagate's own API (``/v1`` uploads and deletes, tus) tells an app's backend.

The dialects have their own notify/callback shapes; an app built on ``/v1`` gets one JSON event
per stored (``object.created``) or deleted (``object.deleted``) object, at the upload token's
``notify_url``, else at the bucket's ``webhook_url`` setting, else nowhere. The event is committed
in the object's own catalog transaction (core.outbox), so it exists exactly when the object does,
and delivered by the same leased, retried loop as the dialects' notifications (core.notify).

Each attempt is signed when it is sent, not when it is queued, with the bucket's webhook secret
(a credential of kind ``webhook``, sealed like every other secret)::

    X-Mediagate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

so a receiver can refuse an old timestamp (a replay) even for a retry or a redelivery days later.
After a rotation the secret it replaced keeps signing, as a second ``v1=``, for
:data:`ROLLOVER`, so receivers can switch without losing an event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from mediagate.catalog import Catalog
from mediagate.core import values
from mediagate.core.errors import BadRequest, Conflict
from mediagate.core.gateway import Notifier, Stored
from mediagate.core.outbox import Notification
from mediagate.core.secrets import SecretBox

OBJECT_CREATED = "object.created"
OBJECT_DELETED = "object.deleted"
SIGNING = "webhook"
"""``Notification.signing`` of a webhook: core.notify signs each attempt with :func:`signed_headers`."""
KIND = "webhook"
"""The credential kind holding a bucket's webhook secret."""
SETTING = "webhook_url"
"""The bucket setting naming its default webhook (``mediagate.bucketconf``)."""
SIGNATURE_HEADER = "X-Mediagate-Signature"
EVENT_HEADER = "X-Mediagate-Event"
DELIVERY_HEADER = "X-Mediagate-Delivery"
ROLLOVER = timedelta(hours=24)
MAX_URL_LENGTH = 2048


class NoSecret(Exception):
    """The bucket has no webhook secret to sign with (never set, or the bucket is gone)."""


@dataclass(frozen=True)
class Source:
    """How the object came or went: ``via`` ``v1`` or ``tus``, and the credential that did it."""

    via: str
    token_id: str | None = None
    upload_id: str | None = None
    key_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "via": self.via,
            "token_id": self.token_id,
            "upload_id": self.upload_id,
            "key_id": self.key_id,
        }


# -- the event ----------------------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(
    event: str, bucket: str, obj: values.Object, source: Source, *, at: datetime | None = None
) -> str:
    """The JSON body of one event (the shape the README's "Webhooks" section documents)."""
    body = {
        "id": f"evt_{secrets.token_hex(16)}",
        "event": event,
        "time": _time(at or datetime.now(UTC)),
        "bucket": bucket,
        "key": obj.key,
        "size": obj.size,
        "content_type": obj.mime,
        "md5": obj.md5,
        "sha256": obj.sha256,
        "width": obj.width,
        "height": obj.height,
        "url": f"/{bucket}/{quote(obj.key)}",
        "source": source.as_dict(),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def notification(
    url: str, event: str, bucket: values.Bucket, obj: values.Object, source: Source
) -> Notification:
    return Notification(
        url=url,
        body=event_body(event, bucket.name, obj, source),
        headers={"Content-Type": "application/json", EVENT_HEADER: event},
        bucket_id=bucket.id,
        signing=SIGNING,
    )


def target(bucket: values.Bucket, token_url: str | None = None) -> str | None:
    """Where an event about ``bucket`` goes: the upload token's URL, else the bucket's webhook."""
    if token_url:
        return token_url
    url = (bucket.settings or {}).get(SETTING)
    return url if isinstance(url, str) and url else None


def on_created(bucket: values.Bucket, url: str | None, source: Source) -> Notifier | None:
    """The ``notify`` a stored upload passes to ``Gateway.upload``/``commit`` (None: no webhook)."""
    if url is None:
        return None
    hook = url

    def notify(stored: Stored) -> list[Notification]:
        return [notification(hook, OBJECT_CREATED, bucket, stored.object, source)]

    return notify


def on_deleted(bucket: values.Bucket, source: Source) -> Callable[[values.Object], list[Notification]] | None:
    """The outbox of a delete (``Gateway.delete_object(notify=…)``), or None without a webhook."""
    url = target(bucket)
    if url is None:
        return None

    def notify(obj: values.Object) -> list[Notification]:
        return [notification(url, OBJECT_DELETED, bucket, obj, source)]

    return notify


# -- checking a URL ------------------------------------------------------------------------------------


async def check_url(url: str, *, allow_private: bool) -> str:
    """A webhook URL as stored, refused now rather than at the first delivery: BadRequest
    ``invalid_notify_url`` for one that is not an absolute http(s) URL, Forbidden
    ``url_not_allowed`` for one the SSRF guard refuses (core.notify.check_url)."""
    from mediagate.core import notify

    value = url.strip()
    if len(value) > MAX_URL_LENGTH or not notify.is_http_url(value):
        raise BadRequest(
            f"the notify URL must be an absolute http:// or https:// URL of at most {MAX_URL_LENGTH} "
            "characters",
            code="invalid_notify_url",
        )
    try:
        await notify.check_url(value, allow_private=allow_private)
    except BadRequest as exc:
        raise BadRequest(exc.message, code="invalid_notify_url") from exc
    return value


# -- the secret ----------------------------------------------------------------------------------------


def has_secret(catalog: Catalog, bucket_id: int) -> bool:
    return bool(catalog.active_secrets(bucket_id, KIND))


def require_secret(catalog: Catalog, bucket: values.Bucket) -> None:
    """Conflict unless the bucket can sign: a webhook without a secret could never be verified."""
    if not has_secret(catalog, bucket.id):
        raise Conflict(
            f"bucket {bucket.name!r} has no webhook secret yet: create it first "
            f"(POST /v1/buckets/{bucket.name}/webhook-secret or `mediagate bucket webhook secret "
            f"{bucket.name}`), then set the webhook",
            code="webhook_secret_missing",
        )


def rotate_secret(catalog: Catalog, box: SecretBox, bucket: values.Bucket) -> tuple[str, datetime | None]:
    """A new webhook secret for ``bucket`` (return it once; only its sealed form is kept) and
    until when the one it replaces still signs (None if there was none)."""
    previous = catalog.credentials(bucket.id, KIND)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    catalog.add_credential(bucket.id, KIND, f"wh_{secrets.token_hex(8)}", box.seal(secret))
    for old in previous:
        catalog.revoke_credential(old.id)
    return secret, (datetime.now(UTC) + ROLLOVER) if previous else None


def signing_secrets(catalog: Catalog, box: SecretBox, bucket_id: int, now: datetime) -> list[str]:
    """The secrets that sign now, newest first: the active one, and those revoked less than
    :data:`ROLLOVER` ago."""
    rows = catalog.credentials(bucket_id, KIND, include_revoked=True)
    return [
        box.open(row.sealed_secret)
        for row in rows
        if row.revoked_at is None or now - row.revoked_at < ROLLOVER
    ]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(
    catalog: Catalog, box: SecretBox, bucket_id: int | None, body: bytes, delivery_id: int
) -> dict[str, str]:
    """The headers that sign one attempt now; NoSecret when the bucket has none."""
    now = datetime.now(UTC)
    keys = signing_secrets(catalog, box, bucket_id, now) if bucket_id is not None else []
    if not keys:
        raise NoSecret(
            "the bucket has no webhook secret to sign with (deleted, or never set: "
            "`mediagate bucket webhook secret <bucket>`)"
        )
    stamp = int(now.timestamp())
    macs = ",".join(f"v1={signature(k, stamp, body)}" for k in keys)
    return {SIGNATURE_HEADER: f"t={stamp},{macs}", DELIVERY_HEADER: str(delivery_id)}
