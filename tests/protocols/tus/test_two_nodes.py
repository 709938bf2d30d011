"""An upload started on one node resumes on the other: the session is in the shared catalog
(PostgreSQL) and its parts in the shared object store (S3 on moto), nothing on either node. The
client talks to a round-robin balancer without sticky sessions, as behind a real load balancer."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage

from mediagate.core.buckets import create_bucket
from tests.protocols.tus.conftest import (
    create,
    head,
    interrupt_patch,
    issue_token,
    meta,
    offset_settles,
    patch,
    random_bytes,
)
from tests.support.cluster import Balancer, Cluster

pytestmark = pytest.mark.postgres


def _bucket(cluster: Cluster) -> str:
    return create_bucket(cluster.admin.catalog, cluster.admin.secrets, f"t{uuid.uuid4().hex[:12]}").bucket


def test_interrupted_on_one_node_and_resumed_by_tuspy_on_the_other(cluster: Cluster, tmp_path: Path) -> None:
    bucket = _bucket(cluster)
    token = issue_token(cluster.admin, bucket, prefix="n/")
    data = random_bytes(2_500_000)
    path = tmp_path / "both.bin"
    path.write_bytes(data)
    storage = FileStorage(str(tmp_path / "urls.json"))
    balancer = Balancer([cluster.a.port, cluster.b.port]).start()
    try:
        client = TusClient(f"{balancer.url}/v1/tus/{bucket}/", headers={"Authorization": f"Bearer {token}"})
        first = client.uploader(
            file_path=str(path), metadata={"filename": "both.bin"}, store_url=True, url_storage=storage
        )
        first.set_url(first.create_url())
        assert first.url.startswith(balancer.url)
        interrupt_patch(first.url, token, 0, data, 900_000)
        offset_settles(first.url, token, 900_000)

        resumed = client.uploader(
            file_path=str(path), metadata={"filename": "both.bin"}, store_url=True, url_storage=storage
        )
        assert resumed.url == first.url
        assert resumed.offset == 900_000
        resumed.chunk_size = 600_000  # several PATCHes, each on the next node
        resumed.upload()
    finally:
        balancer.stop()
        storage.close()
    assert set(balancer.connections) == {cluster.a.port, cluster.b.port}
    for node in cluster.nodes:
        got = httpx.get(f"{node.url}/{bucket}/n/both.bin")
        assert got.status_code == 200
        assert got.content == data


def test_patches_alternate_between_the_nodes(cluster: Cluster) -> None:
    bucket = _bucket(cluster)
    token = issue_token(cluster.admin, bucket, prefix="alt/")
    data = random_bytes(300_000)
    created = create(cluster.a.url, bucket, token, len(data), **{"Upload-Metadata": meta(filename="x")})
    assert created.status_code == 201
    upload_path = created.headers["Location"].removeprefix(cluster.a.url)
    for i, start in enumerate(range(0, len(data), 100_000)):
        node = cluster.nodes[(i + 1) % 2]
        assert head(node.url + upload_path, token).headers["Upload-Offset"] == str(start)
        r = patch(node.url + upload_path, token, start, data[start : start + 100_000])
        assert r.status_code == 204, r.text
    assert httpx.get(f"{cluster.b.url}/{bucket}/alt/x").content == data


def test_a_patch_on_one_node_locks_the_upload_on_the_other(cluster: Cluster) -> None:
    bucket = _bucket(cluster)
    token = issue_token(cluster.admin, bucket, prefix="lock/")
    data = random_bytes(100_000)
    created = create(cluster.a.url, bucket, token, len(data), **{"Upload-Metadata": meta(filename="l")})
    path = urlsplit(created.headers["Location"]).path
    lines = (
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", cluster.a.port)) as slow:
        slow.sendall(lines.encode() + data[:10])  # node a holds the upload's lease
        time.sleep(0.5)
        other = patch(cluster.b.url + path, token, 0, data)
        assert other.status_code == 423, other.text
        slow.sendall(data[10:])
        assert slow.recv(4096).startswith(b"HTTP/1.1 204")
    assert httpx.get(f"{cluster.b.url}/{bucket}/lock/l").content == data
