"""core.webhooks: the secret's rotation window, signing at send time, and a delivery that cannot be
signed (its bucket has no secret) failing with a reason instead of going out unsigned."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from mediagate.catalog.models import Credential
from mediagate.core import notify, values, webhooks
from mediagate.core.buckets import create_bucket
from mediagate.core.gateway import Gateway
from mediagate.core.outbox import Notification
from mediagate.services import build_gateway
from tests.conftest import make_home
from tests.protocols.upyun.forms import Receiver


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    gateway = build_gateway(make_home(tmp_path / "home", notify_retries=0, allow_private_callbacks=True))
    yield gateway
    gateway.catalog.close()


def test_a_rotated_secret_signs_alongside_for_a_day_then_stops(gw: Gateway) -> None:
    bucket = values.Bucket.of(
        gw.catalog.require_bucket(create_bucket(gw.catalog, gw.secrets, "hooks").bucket)
    )
    first, until = webhooks.rotate_secret(gw.catalog, gw.secrets, bucket)
    assert until is None
    second, until = webhooks.rotate_secret(gw.catalog, gw.secrets, bucket)
    assert until is not None and timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
    now = datetime.now(UTC)
    assert webhooks.signing_secrets(gw.catalog, gw.secrets, bucket.id, now) == [second, first]
    assert webhooks.signing_secrets(gw.catalog, gw.secrets, bucket.id, now + timedelta(hours=25)) == [second]
    # sealed at rest like every other secret: the catalog never holds one in clear
    stored = [c.sealed_secret for c in gw.catalog.credentials(bucket.id, webhooks.KIND, include_revoked=True)]
    assert stored and not any(first in s or second in s for s in stored)

    header = webhooks.signed_headers(gw.catalog, gw.secrets, bucket.id, b"{}", 7)[webhooks.SIGNATURE_HEADER]
    stamp, *macs = header.split(",")
    assert abs(int(stamp.removeprefix("t=")) - time.time()) < 5
    expected = [
        "v1=" + hmac.new(k.encode(), stamp[2:].encode() + b".{}", hashlib.sha256).hexdigest()
        for k in (second, first)
    ]
    assert macs == expected


def test_an_event_without_a_secret_fails_with_a_reason_and_is_never_sent_unsigned(gw: Gateway) -> None:
    bucket = gw.catalog.require_bucket(create_bucket(gw.catalog, gw.secrets, "nosecret").bucket)
    with Receiver() as receiver:
        note = Notification(
            url=receiver.url(),
            body="{}",
            headers={"Content-Type": "application/json"},
            bucket_id=bucket.id,
            signing=webhooks.SIGNING,
        )
        gw.catalog.queue([note])
        assert asyncio.run(notify.deliver_due(gw)) == 1
        assert receiver.requests == []
    (row,) = gw.catalog.list_deliveries(bucket_id=bucket.id)
    assert row.state == "failed" and "no webhook secret" in (row.last_error or "")


def test_an_old_secret_past_its_window_no_longer_signs(gw: Gateway) -> None:
    bucket = values.Bucket.of(
        gw.catalog.require_bucket(create_bucket(gw.catalog, gw.secrets, "window").bucket)
    )
    old, _ = webhooks.rotate_secret(gw.catalog, gw.secrets, bucket)
    new, _ = webhooks.rotate_secret(gw.catalog, gw.secrets, bucket)
    with gw.catalog.engine.begin() as conn:  # the rotation happened two days ago
        conn.execute(
            update(Credential)
            .where(Credential.revoked_at.is_not(None), Credential.kind == webhooks.KIND)
            .values(revoked_at=datetime.now(UTC) - timedelta(days=2))
        )
    assert webhooks.signing_secrets(gw.catalog, gw.secrets, bucket.id, datetime.now(UTC)) == [new]
    assert old != new
