"""S3Storage's border for outages: an endpoint that refuses connections or answers 5xx is the
core's ``StorageUnavailable`` (botocore's error chained for the log); a missing blob is still
``BlobNotFound``; a multipart upload abandoned while S3 was out of reach is aborted by the next
collector round once S3 answers again."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from mediagate.core.errors import StorageUnavailable
from mediagate.storage.base import BlobNotFound
from mediagate.storage.s3 import S3Storage
from tests.conftest import free_port
from tests.support.moto import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    MotoServer,
    make_s3_storage,
    new_bucket_name,
    s3_client,
)
from tests.support.proxy import TcpProxy

MIB = 1024 * 1024


def storage_at(endpoint: str, bucket: str = "bucket") -> S3Storage:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    return S3Storage(client, bucket, region=REGION, part_size=5 * MIB, multipart_threshold=5 * MIB)


class _Failing(BaseHTTPRequestHandler):
    """An S3 endpoint in trouble: every request is a 503 SlowDown."""

    def _fail(self) -> None:
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _fail

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_an_endpoint_that_refuses_connections_is_unavailable(tmp_path: Path) -> None:
    storage = storage_at(f"http://127.0.0.1:{free_port()}")
    source = tmp_path / "blob"
    source.write_bytes(b"data")
    for call in (
        lambda: storage.put("blob1", source),
        lambda: storage.size("blob1"),
        lambda: storage.delete("b"),
    ):
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert isinstance(caught.value.__cause__, EndpointConnectionError)
    assert source.exists()  # a failed put leaves the caller's file in place


def test_an_endpoint_answering_5xx_is_unavailable(failing_endpoint: str) -> None:
    storage = storage_at(failing_endpoint)
    with pytest.raises(StorageUnavailable) as caught:
        storage.open("blob1")
    assert isinstance(caught.value.__cause__, ClientError)


def test_a_missing_blob_is_still_not_found(s3_server: MotoServer) -> None:
    storage = make_s3_storage(s3_server)
    with pytest.raises(BlobNotFound):
        storage.size("nothing-here")
    assert storage.exists("nothing-here") is False


@pytest.fixture
def proxied(s3_server: MotoServer) -> Iterator[tuple[S3Storage, TcpProxy]]:
    """An S3Storage that reaches moto through a proxy the test can cut (on a fresh bucket)."""
    proxy = TcpProxy(s3_server.port).start()
    bucket = new_bucket_name()
    s3_client(s3_server).create_bucket(Bucket=bucket)
    yield storage_at(f"http://127.0.0.1:{proxy.port}", bucket), proxy
    proxy.cut()


def open_uploads(s3_server: MotoServer, storage: S3Storage) -> list[str]:
    listing = s3_client(s3_server).list_multipart_uploads(Bucket=storage.bucket)
    return [u["Key"] for u in listing.get("Uploads", [])]


def test_a_writer_abandoned_in_an_outage_is_aborted_once_s3_is_back(
    s3_server: MotoServer, proxied: tuple[S3Storage, TcpProxy]
) -> None:
    """Before, its failed AbortMultipartUpload left the upload open until the stale-upload grace
    (a day) had passed since the collector first listed it."""
    storage, proxy = proxied
    writer = storage.writer(uuid.uuid4().hex)
    writer.write([os.urandom(5 * MIB)])  # one part sent
    proxy.cut()
    with pytest.raises(StorageUnavailable):
        writer.write([os.urandom(5 * MIB)])
        writer.finish()
    with pytest.raises(StorageUnavailable):
        writer.abort()
    with pytest.raises(StorageUnavailable):  # the collector's round during the outage
        storage.abort_stale_writes(datetime.now(UTC) - timedelta(days=1))
    proxy.restore()
    assert open_uploads(s3_server, storage) == [writer.blob_id]
    assert storage.abort_stale_writes(datetime.now(UTC) - timedelta(days=1)) == 1
    assert open_uploads(s3_server, storage) == []


def test_a_multipart_put_abandoned_in_an_outage_is_aborted_once_s3_is_back(
    s3_server: MotoServer, proxied: tuple[S3Storage, TcpProxy], tmp_path: Path
) -> None:
    """``put`` of a file above the threshold is boto3's multipart upload, which cannot abort it
    either when the endpoint goes away in the middle."""
    storage, proxy = proxied
    source = tmp_path / "big"
    source.write_bytes(os.urandom(12 * MIB))
    blob_id = uuid.uuid4().hex
    key = storage._key(blob_id)
    upload_id = storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key)["UploadId"]
    proxy.cut()  # as if it went away after boto3's CreateMultipartUpload
    with pytest.raises(StorageUnavailable):
        storage.put(blob_id, source)
    assert source.exists()
    proxy.restore()
    assert upload_id and open_uploads(s3_server, storage) == [key]
    assert storage.abort_stale_writes(datetime.now(UTC) - timedelta(days=1)) == 1
    assert open_uploads(s3_server, storage) == []


def test_a_bucket_that_vanished_is_made_again(s3_server: MotoServer, tmp_path: Path) -> None:
    """An S3-compatible store restarted empty (moto, a MinIO on a wiped volume): before, the
    bucket checked once at first use was never looked for again, and every upload was a 503
    until mediagate restarted. The call that finds it gone is still a 503; the next works."""
    storage = make_s3_storage(s3_server)
    source = tmp_path / "blob"
    source.write_bytes(b"before")
    storage.put("a" * 32, source)
    client = s3_client(s3_server)
    client.delete_object(Bucket=storage.bucket, Key="a" * 32)
    client.delete_bucket(Bucket=storage.bucket)
    source.write_bytes(b"after")
    with pytest.raises(StorageUnavailable):
        storage.put("b" * 32, source)
    storage.put("b" * 32, source)
    assert b"".join(storage.open("b" * 32)) == b"after"
