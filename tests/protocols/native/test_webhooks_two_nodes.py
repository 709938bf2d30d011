"""Webhooks on two nodes (PostgreSQL catalog, S3 on moto): the secret set through one node signs
what the other sends, and an event owed by an upload spread over both nodes is delivered once
(both nodes run delivery loops; deliveries are leased), retried after a failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import pytest
from tusclient.client import TusClient

from mediagate.core.buckets import create_bucket
from tests.protocols.native.api import client, new_key
from tests.protocols.upyun.forms import Receiver, wait_until
from tests.support.cluster import Balancer, Cluster

pytestmark = pytest.mark.postgres


def verify(secret: str, header: str, body: bytes) -> bool:
    """From the README: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``, fresh."""
    fields = [part.split("=", 1) for part in header.split(",")]
    (stamp,) = [v for k, v in fields if k == "t"]
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - int(stamp)) < 300 and any(k == "v1" and v == mac for k, v in fields)


def test_a_tus_upload_over_both_nodes_is_announced_once(cluster: Cluster, tmp_path: Path) -> None:
    bucket = create_bucket(cluster.admin.catalog, cluster.admin.secrets, f"w{uuid.uuid4().hex[:12]}").bucket
    data = bytes(range(256)) * 4000
    path = tmp_path / "spread.bin"
    path.write_bytes(data)
    balancer = Balancer([cluster.a.port, cluster.b.port]).start()
    with Receiver(statuses=[503, 200]) as receiver:
        try:
            with client(cluster.a.url, new_key(cluster.admin, bucket)) as on_a:
                secret = on_a.post(f"/v1/buckets/{bucket}/webhook-secret").json()["secret"]
                r = on_a.patch(
                    f"/v1/buckets/{bucket}", json={"settings": {"webhook_url": receiver.url("/two")}}
                )
                assert r.status_code == 200, r.text
                made = on_a.post(f"/v1/buckets/{bucket}/upload-tokens", json={"prefix": "n/"}).json()
            time.sleep(1.1)  # both nodes' bucket caches
            uploader = TusClient(
                f"{balancer.url}/v1/tus/{bucket}/", headers={"Authorization": f"Bearer {made['token']}"}
            ).uploader(file_path=str(path), chunk_size=300_000, metadata={"filename": "spread.bin"})
            uploader.upload()
            assert len(set(balancer.connections)) == 2  # the upload really went through both nodes
        finally:
            balancer.stop()
        assert wait_until(lambda: len(receiver.requests) >= 2, timeout=40)
        time.sleep(3)  # a second node delivering it again would show up here
        assert len(receiver.requests) == 2  # the 503, then the retry: one event, once delivered
        bodies = {body for _, _, body in receiver.requests}
        assert len(bodies) == 1
        for _, headers, body in receiver.requests:
            assert verify(secret, headers["x-mediagate-signature"], body)
        event = json.loads(bodies.pop())
        assert event["key"] == "n/spread.bin" and event["source"]["via"] == "tus"
        assert event["sha256"] == hashlib.sha256(data).hexdigest()
