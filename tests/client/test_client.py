"""mediagate.client used as a library: injected httpx client, each adapter, sources."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

import mediagate.client as client
from mediagate.client import (
    ImageXClient,
    ObjectExists,
    SourceError,
    UploadError,
    UpyunClient,
    WantuClient,
    open_source,
)
from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.protocols.imagex.conftest import png


def test_public_names() -> None:
    assert sorted(client.__all__) == sorted(n for n in client.__all__ if hasattr(client, n))


def test_adapters_with_an_injected_client(
    server: LiveServer, bucket: BucketCredentials, tmp_path: Path
) -> None:
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: sent.append(r.method)]})
    adapters = [
        ImageXClient(server.url, bucket.bucket, bucket.access_key_id, bucket.secret_access_key, client=http),
        UpyunClient(server.url, bucket.bucket, bucket.operator, bucket.password, client=http),
        WantuClient(server.url, bucket.bucket, bucket.access_key_id, bucket.secret_access_key, client=http),
    ]
    for n, adapter in enumerate(adapters):
        data = png(3, 4 + n)  # UPYUN and Wantu name by MD5: one picture each, no key taken twice
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        source = open_source(uri)
        progress: list[int] = []
        try:
            result = adapter.upload(source, progress=progress.append)
        finally:
            source.cleanup()
        assert not source.path.exists()
        assert sum(progress) == len(data)
        assert httpx.get(result.url).content == data
        assert result.md5 == source.md5 and result.size == len(data)
    assert sent.count("PUT") >= 2 and "POST" in sent
    with pytest.raises(UploadError) as err:
        ImageXClient(server.url, bucket.bucket, bucket.access_key_id, "wrong", client=http).upload(
            open_source(uri)
        )
    assert err.value.status == 403 and err.value.code == "SignatureDoesNotMatch"


def test_sources_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    for raw in (
        str(tmp_path / "missing"),
        "ftp://example.com/x",
        "data:image/png;base64,***",
        "http://127.0.0.1:1/x",
        "http://10.0.0.1/x",
    ):
        with pytest.raises(SourceError):
            open_source(raw)


def test_no_adapter_replaces_an_object_unless_asked(
    server: LiveServer, bucket: BucketCredentials, tmp_path: Path
) -> None:
    adapters = [
        ImageXClient(server.url, bucket.bucket, bucket.access_key_id, bucket.secret_access_key),
        UpyunClient(server.url, bucket.bucket, bucket.operator, bucket.password),
        WantuClient(server.url, bucket.bucket, bucket.access_key_id, bucket.secret_access_key),
    ]
    for n, adapter in enumerate(adapters):
        key = f"kept/{n}.txt"
        first, second = tmp_path / f"{n}-1.txt", tmp_path / f"{n}-2.txt"
        first.write_bytes(b"first")
        second.write_bytes(b"second")
        adapter.upload(open_source(str(first)), key=key)
        with pytest.raises(ObjectExists) as err:
            adapter.upload(open_source(str(second)), key=key)
        assert err.value.status in (400, 409), adapter
        assert httpx.get(f"{server.url}/{bucket.bucket}/{key}").content == b"first"
        adapter.upload(open_source(str(second)), key=key, overwrite=True)
        assert httpx.get(f"{server.url}/{bucket.bucket}/{key}").content == b"second"
