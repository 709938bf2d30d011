"""S3Storage's border for outages: an endpoint that refuses connections or answers 5xx is the
core's ``StorageUnavailable`` (botocore's error chained for the log); a missing blob is still
``BlobNotFound``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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
from tests.support.moto import ACCESS_KEY, REGION, SECRET_KEY, MotoServer, make_s3_storage


def storage_at(endpoint: str) -> S3Storage:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    return S3Storage(client, "bucket", region=REGION)


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
