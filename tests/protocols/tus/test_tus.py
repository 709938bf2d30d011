"""tus 1.0 at /v1/tus/ against a live server: tuspy uploads (whole, in chunks, with checksums,
interrupted and resumed from its stored URL), every extension spelled out on the wire, and the
upload token's limits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError
from tusclient.storage.filestorage import FileStorage

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.tus.conftest import (
    PATCH_TYPE,
    TUS,
    Issue,
    auth,
    create,
    head,
    interrupt_patch,
    issue_token,
    meta,
    offset_settles,
    patch,
    random_bytes,
)

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


def tus_client(server: LiveServer, bucket: str, token: str) -> TusClient:
    return TusClient(f"{server.url}/v1/tus/{bucket}/", headers={"Authorization": f"Bearer {token}"})


def read(server: LiveServer, bucket: str, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/{bucket}/{key}")


def write_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- discovery and core ------------------------------------------------------------------------


def test_options_lists_version_extensions_and_checksums(server: LiveServer) -> None:
    r = httpx.options(f"{server.url}/v1/tus/anything/")
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert r.headers["Tus-Resumable"] == "1.0.0"
    extensions = r.headers["Tus-Extension"].split(",")
    for name in ("creation", "creation-with-upload", "termination", "checksum", "expiration"):
        assert name in extensions
    assert r.headers["Tus-Checksum-Algorithm"].split(",") == ["md5", "sha1", "sha256", "crc32"]
    assert int(r.headers["Tus-Max-Size"]) > 0


def test_tuspy_uploads_in_chunks_and_the_object_is_readable(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, tmp_path: Path
) -> None:
    data = random_bytes(700_000)
    token = issue(prefix="uploads/", max_size=10_000_000)
    uploader = tus_client(server, bucket.bucket, token).uploader(
        file_path=str(write_file(tmp_path, "clip.bin", data)),
        chunk_size=256 * 1024,
        metadata={"filename": "clip.bin", "filetype": "application/octet-stream"},
    )
    uploader.upload()
    assert uploader.offset == len(data)
    got = read(server, bucket.bucket, "uploads/clip.bin")
    assert got.status_code == 200
    assert got.content == data
    # a finished upload still answers HEAD with its full offset (a client checking it is done)
    r = head(uploader.url, token)
    assert r.status_code == 200
    assert r.headers["Upload-Offset"] == str(len(data))
    assert r.headers["Upload-Length"] == str(len(data))
    assert "filename" in r.headers["Upload-Metadata"]
    assert r.headers["Cache-Control"] == "no-store"


def test_tuspy_with_sha1_checksums(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, tmp_path: Path
) -> None:
    data = random_bytes(300_000)
    token = issue(prefix="sums/")
    uploader = tus_client(server, bucket.bucket, token).uploader(
        file_path=str(write_file(tmp_path, "a.bin", data)),
        chunk_size=100_000,
        metadata={"filename": "a.bin"},
        upload_checksum=True,
    )
    uploader.upload()
    assert read(server, bucket.bucket, "sums/a.bin").content == data


def test_wrong_version_content_type_and_offset(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="core/")
    created = create(server.url, bucket.bucket, token, 10, **{"Upload-Metadata": meta(filename="c.txt")})
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    assert url.startswith(f"{server.url}/v1/tus/{bucket.bucket}/")

    old = httpx.head(url, headers={"Tus-Resumable": "0.2.2", "Authorization": f"Bearer {token}"})
    assert old.status_code == 412
    assert old.headers["Tus-Version"] == "1.0.0"

    plain = httpx.patch(
        url,
        headers={**auth(token), "Content-Type": "text/plain", "Upload-Offset": "0"},
        content=b"hello",
    )
    assert plain.status_code == 415
    assert plain.json()["error"]["code"] == "tus_content_type"

    assert patch(url, token, 0, b"hello").status_code == 204
    wrong = patch(url, token, 0, b"again")
    assert wrong.status_code == 409
    assert wrong.json()["error"]["code"] == "offset_mismatch"
    assert head(url, token).headers["Upload-Offset"] == "5"

    too_long = patch(url, token, 5, b"123456")
    assert too_long.status_code == 413
    assert head(url, token).headers["Upload-Offset"] == "5"

    done = patch(url, token, 5, b"world")
    assert done.status_code == 204
    assert done.headers["Upload-Offset"] == "10"
    assert read(server, bucket.bucket, "core/c.txt").content == b"helloworld"
    # the final PATCH repeated (a client that lost the answer) is answered, not redone
    again = patch(url, token, 10, b"")
    assert again.status_code == 204
    assert again.headers["Upload-Offset"] == "10"


def test_unknown_upload_and_no_token(server: LiveServer, bucket: BucketCredentials, issue: Issue) -> None:
    token = issue()
    missing = head(f"{server.url}/v1/tus/{bucket.bucket}/{'0' * 32}", token)
    assert missing.status_code == 404
    assert missing.headers["Tus-Resumable"] == "1.0.0"
    nobody = httpx.post(f"{server.url}/v1/tus/{bucket.bucket}/", headers={**TUS, "Upload-Length": "3"})
    assert nobody.status_code == 401
    assert nobody.json()["error"]["code"] == "missing_credentials"
    forged = create(server.url, bucket.bucket, "mgt_" + "0" * 16 + "_" + "0" * 48, 3)
    assert forged.status_code == 401


# -- creation-with-upload, deferred length, termination -----------------------------------------


def test_creation_with_upload_completes_in_one_request(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="one/")
    r = httpx.post(
        f"{server.url}/v1/tus/{bucket.bucket}/",
        headers={
            **auth(token),
            **PATCH_TYPE,
            "Upload-Length": str(len(PNG)),
            "Upload-Metadata": meta(filename="dot.png", filetype="image/png"),
        },
        content=PNG,
    )
    assert r.status_code == 201, r.text
    assert r.headers["Upload-Offset"] == str(len(PNG))
    got = read(server, bucket.bucket, "one/dot.png")
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"


def test_creation_with_part_of_the_upload_then_patch(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="half/")
    data = random_bytes(2000)
    r = httpx.post(
        f"{server.url}/v1/tus/{bucket.bucket}/",
        headers={**auth(token), **PATCH_TYPE, "Upload-Length": "2000", "Upload-Metadata": meta(filename="h")},
        content=data[:1200],
    )
    assert r.status_code == 201
    assert r.headers["Upload-Offset"] == "1200"
    assert patch(r.headers["Location"], token, 1200, data[1200:]).status_code == 204
    assert read(server, bucket.bucket, "half/h").content == data


def test_deferred_length(server: LiveServer, bucket: BucketCredentials, issue: Issue) -> None:
    token = issue(prefix="defer/", max_size=10_000)
    r = create(
        server.url,
        bucket.bucket,
        token,
        None,
        **{"Upload-Defer-Length": "1", "Upload-Metadata": meta(filename="d")},
    )
    assert r.status_code == 201
    url = r.headers["Location"]
    assert head(url, token).headers["Upload-Defer-Length"] == "1"
    assert patch(url, token, 0, b"abc").status_code == 204
    assert patch(url, token, 3, b"def", **{"Upload-Length": "20000"}).status_code == 413
    done = patch(url, token, 3, b"def", **{"Upload-Length": "6"})
    assert done.status_code == 204, done.text
    assert read(server, bucket.bucket, "defer/d").content == b"abcdef"


def test_termination_removes_the_upload_and_gives_the_use_back(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    token = issue(prefix="gone/", max_uses=1)
    url = create(server.url, bucket.bucket, token, 100, **{"Upload-Metadata": meta(filename="t")}).headers[
        "Location"
    ]
    assert patch(url, token, 0, b"x" * 40).status_code == 204
    upload_id = url.rsplit("/", 1)[1]
    blob = admin.catalog.parts(upload_id)[0].blob_id
    r = httpx.delete(url, headers=auth(token))
    assert r.status_code == 204
    assert head(url, token).status_code == 404
    assert admin.catalog.get_session(upload_id) is None
    admin.collect_garbage(grace=timedelta(0))
    assert not admin.storage.exists(blob)
    # the one use was given back: the token creates (and finishes) another upload
    again = create(server.url, bucket.bucket, token, 2, **{"Upload-Metadata": meta(filename="t")})
    assert again.status_code == 201, again.text
    assert patch(again.headers["Location"], token, 0, b"ok").status_code == 204
    assert read(server, bucket.bucket, "gone/t").content == b"ok"


# -- checksum -----------------------------------------------------------------------------------


def _digest(algorithm: str, data: bytes) -> str:
    raw = (
        zlib.crc32(data).to_bytes(4, "big") if algorithm == "crc32" else hashlib.new(algorithm, data).digest()
    )
    return f"{algorithm} {base64.b64encode(raw).decode()}"


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "crc32"])
def test_checksum_match_and_mismatch(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, algorithm: str
) -> None:
    token = issue(prefix=f"{algorithm}/")
    url = create(server.url, bucket.bucket, token, 8, **{"Upload-Metadata": meta(filename="f")}).headers[
        "Location"
    ]
    bad = patch(url, token, 0, b"abcd", **{"Upload-Checksum": _digest(algorithm, b"abcX")})
    assert bad.status_code == 460
    assert bad.json()["error"]["code"] == "checksum_mismatch"
    assert head(url, token).headers["Upload-Offset"] == "0"  # the part was discarded
    good = patch(url, token, 0, b"abcd", **{"Upload-Checksum": _digest(algorithm, b"abcd")})
    assert good.status_code == 204
    assert (
        patch(url, token, 4, b"efgh", **{"Upload-Checksum": _digest(algorithm, b"efgh")}).status_code == 204
    )
    assert read(server, bucket.bucket, f"{algorithm}/f").content == b"abcdefgh"


def test_unsupported_checksum_algorithm(server: LiveServer, bucket: BucketCredentials, issue: Issue) -> None:
    token = issue()
    url = create(server.url, bucket.bucket, token, 4, **{"Upload-Metadata": meta(filename="u")}).headers[
        "Location"
    ]
    r = patch(url, token, 0, b"abcd", **{"Upload-Checksum": "sha512 AAAA"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "checksum_algorithm"


# -- expiration ---------------------------------------------------------------------------------


def test_expired_upload_is_gone_and_collected(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    token = issue(prefix="exp/")
    created = create(server.url, bucket.bucket, token, 10, **{"Upload-Metadata": meta(filename="e")})
    url = created.headers["Location"]
    expires = datetime.strptime(created.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(
        tzinfo=UTC
    )
    max_age = timedelta(seconds=admin.settings.session_max_age_seconds)
    assert abs(expires - (datetime.now(UTC) + max_age)) < timedelta(seconds=60)
    assert "Upload-Expires" in patch(url, token, 0, b"12345").headers
    upload_id = url.rsplit("/", 1)[1]
    blob = admin.catalog.parts(upload_id)[0].blob_id
    admin.catalog.update_session(upload_id, updated_at=datetime.now(UTC) - max_age - timedelta(seconds=1))
    assert head(url, token).status_code == 410
    assert patch(url, token, 5, b"67890").status_code == 410
    admin.collect_garbage(grace=timedelta(0))  # the session goes, its parts become garbage …
    assert admin.catalog.get_session(upload_id) is None
    admin.collect_garbage(grace=timedelta(0))  # … which the next round removes
    assert not admin.storage.exists(blob)
    assert head(url, token).status_code == 404
    assert read(server, bucket.bucket, "exp/e").status_code == 404


# -- the upload token's limits ------------------------------------------------------------------


def test_used_up_token_is_refused(server: LiveServer, bucket: BucketCredentials, issue: Issue) -> None:
    token = issue(max_uses=1, prefix="once/")
    assert (
        create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="a")}).status_code
        == 201
    )
    second = create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="b")})
    assert second.status_code in (401, 403)
    assert second.json()["error"]["code"] == "token_used_up"


def test_upload_length_over_max_size_is_413_at_creation(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(max_size=1000)
    r = create(server.url, bucket.bucket, token, 1001, **{"Upload-Metadata": meta(filename="big")})
    assert r.status_code == 413
    assert "Location" not in r.headers


def test_declared_and_sniffed_types_are_checked(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(content_types=["image/*"], max_uses=3, prefix="img/")
    declared = create(
        server.url,
        bucket.bucket,
        token,
        4,
        **{"Upload-Metadata": meta(filename="a.txt", filetype="text/plain")},
    )
    assert declared.status_code == 403
    assert declared.json()["error"]["code"] == "content_type_not_allowed"
    # a client that lies about the type is refused when the bytes are sniffed, and nothing stays
    liar = create(
        server.url,
        bucket.bucket,
        token,
        4,
        **{"Upload-Metadata": meta(filename="b.png", filetype="image/png")},
    )
    assert liar.status_code == 201
    url = liar.headers["Location"]
    refused = patch(url, token, 0, b"text")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "mime_not_allowed"
    assert head(url, token).status_code == 404
    assert read(server, bucket.bucket, "img/b.png").status_code == 404


def test_a_token_of_another_bucket_is_refused(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    from mediagate.core.buckets import create_bucket

    other = create_bucket(admin.catalog, admin.secrets, f"o{bucket.bucket[1:]}")
    foreign = issue_token(admin, other.bucket)
    r = create(server.url, bucket.bucket, foreign, 3, **{"Upload-Metadata": meta(filename="x")})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "token_bucket_mismatch"
    token = issue()
    url = create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="x")}).headers[
        "Location"
    ]
    assert head(url, foreign).status_code == 403
    assert patch(url, foreign, 0, b"abc").status_code == 403
    # another token of the same bucket may not take over the upload either
    sibling = issue()
    refused = patch(url, sibling, 0, b"abc")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "token_mismatch"
    # nor may the upload be reached under another bucket's path
    moved = url.replace(f"/v1/tus/{bucket.bucket}/", f"/v1/tus/{other.bucket}/")
    assert head(moved, foreign).status_code == 404


# -- interrupted, resumed, concurrent -----------------------------------------------------------


def test_interrupted_patch_keeps_what_arrived_and_tuspy_resumes_from_its_stored_url(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, tmp_path: Path
) -> None:
    data = random_bytes(3_000_000)
    path = write_file(tmp_path, "movie.bin", data)
    token = issue(prefix="resume/")
    storage = FileStorage(str(tmp_path / "tus-urls.json"))
    client = tus_client(server, bucket.bucket, token)
    first = client.uploader(
        file_path=str(path), metadata={"filename": "movie.bin"}, store_url=True, url_storage=storage
    )
    first.set_url(first.create_url())  # created and remembered, as tuspy does before its first PATCH
    interrupt_patch(first.url, token, 0, data, 1_234_567)
    offset_settles(first.url, token, 1_234_567)  # the bytes that arrived were kept

    resumed = client.uploader(
        file_path=str(path), metadata={"filename": "movie.bin"}, store_url=True, url_storage=storage
    )
    assert resumed.url == first.url
    assert resumed.offset == 1_234_567
    resumed.upload()
    storage.close()
    assert read(server, bucket.bucket, "resume/movie.bin").content == data


def test_an_interrupted_part_with_a_checksum_is_discarded(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="cut/")
    data = random_bytes(500_000)
    url = create(
        server.url, bucket.bucket, token, len(data), **{"Upload-Metadata": meta(filename="c")}
    ).headers["Location"]
    parts = urlsplit(url)
    lines = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nUpload-Checksum: {_digest('sha1', data)}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname or "", parts.port or 80)) as sock:
        sock.sendall(lines.encode() + data[:200_000])
        time.sleep(0.3)
    time.sleep(1.0)
    assert head(url, token).headers["Upload-Offset"] == "0"
    assert patch(url, token, 0, data).status_code == 204


def test_concurrent_patches_on_one_upload_do_not_interleave(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="race/")
    data = random_bytes(400_000)
    url = create(
        server.url, bucket.bucket, token, len(data), **{"Upload-Metadata": meta(filename="r")}
    ).headers["Location"]
    parts = urlsplit(url)
    lines = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: 200000\r\n\r\n"
    )
    sock = socket.create_connection((parts.hostname or "", parts.port or 80))
    try:
        sock.sendall(lines.encode() + data[:1000])  # a slow writer holds the upload
        time.sleep(0.3)
        started = time.monotonic()
        second = patch(url, token, 0, data[:200_000])
        assert second.status_code == 423
        assert time.monotonic() - started >= 2.5  # it waited for the lease before refusing
        sock.sendall(data[1000:200_000])
        answer = sock.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 204"), answer
    finally:
        sock.close()
    assert head(url, token).headers["Upload-Offset"] == "200000"
    late = patch(url, token, 0, data[:200_000])
    assert late.status_code == 409
    assert patch(url, token, 200_000, data[200_000:]).status_code == 204
    assert read(server, bucket.bucket, "race/r").content == data


def test_parallel_final_patches_complete_once(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    token = issue(prefix="once/")
    url = create(server.url, bucket.bucket, token, 6, **{"Upload-Metadata": meta(filename="o")}).headers[
        "Location"
    ]
    assert patch(url, token, 0, b"abc").status_code == 204
    statuses: list[int] = []

    def finish() -> None:
        statuses.append(patch(url, token, 3, b"def").status_code)

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(204) == 1, statuses
    assert set(statuses) <= {204, 409, 423}
    assert read(server, bucket.bucket, "once/o").content == b"abcdef"


# -- CORS for browsers (Uppy on another origin) -------------------------------------------------


def test_cors_preflight_and_exposed_headers(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    origin = "https://app.example"
    pre = httpx.options(
        f"{server.url}/v1/tus/{bucket.bucket}/{'a' * 32}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,content-type",
        },
    )
    assert pre.status_code == 204
    assert "PATCH" in pre.headers["Access-Control-Allow-Methods"]
    assert "upload-offset" in pre.headers["Access-Control-Allow-Headers"]
    token = issue()
    r = create(
        server.url, bucket.bucket, token, 3, **{"Origin": origin, "Upload-Metadata": meta(filename="c")}
    )
    assert r.status_code == 201
    exposed = r.headers["Access-Control-Expose-Headers"]
    for name in ("Location", "Upload-Offset", "Tus-Resumable", "Upload-Expires"):
        assert name in exposed
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_tuspy_reports_a_refusal(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, tmp_path: Path
) -> None:
    token = issue(max_size=10)
    uploader = tus_client(server, bucket.bucket, token).uploader(
        file_path=str(write_file(tmp_path, "big.bin", b"x" * 11)), metadata={"filename": "big.bin"}
    )
    with pytest.raises(TusCommunicationError) as caught:
        uploader.upload()
    assert caught.value.status_code == 413


# -- what Uppy's tus plugin (tus-js-client) sends with its defaults ------------------------------


def test_uppy_defaults(server: LiveServer, bucket: BucketCredentials, issue: Issue) -> None:
    """Uppy's tus plugin: metadata from the file (``relativePath`` may be null, ``filetype`` empty
    for an unknown type), creation, then one PATCH of the whole file (chunkSize: Infinity), all
    cross-origin; a resumed upload starts with HEAD."""
    origin = "http://localhost:5173"
    token = issue(prefix="uppy/", content_types=["image/*"])
    headers = {**auth(token), "Origin": origin}
    uppy_meta = meta(
        relativePath="null", name="dot.png", type="image/png", filetype="image/png", filename="dot.png"
    )
    created = httpx.post(
        f"{server.url}/v1/tus/{bucket.bucket}/",
        headers={**headers, "Upload-Length": str(len(PNG)), "Upload-Metadata": uppy_meta},
    )
    assert created.status_code == 201, created.text
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    url = created.headers["Location"]
    resumed = httpx.head(url, headers=headers)
    assert resumed.headers["Upload-Offset"] == "0"
    assert "Upload-Offset" in resumed.headers["Access-Control-Expose-Headers"]
    done = httpx.patch(url, headers={**headers, **PATCH_TYPE, "Upload-Offset": "0"}, content=PNG)
    assert done.status_code == 204
    assert done.headers["Upload-Offset"] == str(len(PNG))
    assert read(server, bucket.bucket, "uppy/dot.png").content == PNG

    unknown = meta(name="notes", type="", filetype="", filename="notes")
    plain = issue(prefix="uppy/")
    r = create(server.url, bucket.bucket, plain, 5, **{"Upload-Metadata": unknown})
    assert r.status_code == 201
    assert patch(r.headers["Location"], plain, 0, b"hello").status_code == 204
    assert read(server, bucket.bucket, "uppy/notes").content == b"hello"


def test_method_override_for_networks_that_drop_patch(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="ovr/")
    url = create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="o")}).headers[
        "Location"
    ]
    r = httpx.post(
        url,
        headers={**auth(token), **PATCH_TYPE, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
        content=b"abc",
    )
    assert r.status_code == 204
    assert read(server, bucket.bucket, "ovr/o").content == b"abc"


def test_refusals_before_routing_are_tus_shaped(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    """A body declared larger than any upload may be is refused by the front door, unread."""
    token = issue()
    url = create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="f")}).headers[
        "Location"
    ]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        lines = (
            f"PATCH {urlsplit(url).path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: 0\r\nContent-Length: {10**15}\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.sendall(lines.encode())
        sock.settimeout(10)
        received = b""
        while chunk := sock.recv(65536):  # the answer says Connection: close
            received += chunk
        answer = received.decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "connection: close" in answer.lower()
    assert '"error"' in answer and "payload_too_large" in answer
    assert head(url, token).headers["Upload-Offset"] == "0"
    nowhere = httpx.get(f"{server.url}/v1/tus/")
    assert nowhere.status_code == 404
    assert nowhere.json()["error"]["code"] == "not_found"
    wrong = httpx.put(f"{server.url}/v1/tus/{bucket.bucket}/", headers=auth(token))
    assert wrong.status_code == 405
    assert "PATCH" in wrong.headers["Allow"]


def test_a_large_patch_streams_with_flat_server_memory(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    size = 64 * 1024 * 1024
    chunk = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    token = issue(prefix="big/")
    url = create(
        server.url, bucket.bucket, token, size, **{"Upload-Metadata": meta(filename="big.bin")}
    ).headers["Location"]

    def stream() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    process = psutil.Process(server.process.pid if server.process else 0)
    before = process.memory_info().rss
    r = httpx.patch(
        url,
        headers={**auth(token), **PATCH_TYPE, "Upload-Offset": "0", "Content-Length": str(size)},
        content=stream(),
        timeout=120,
    )
    grown = process.memory_info().rss - before
    assert r.status_code == 204, r.text
    assert grown < 32 * 1024 * 1024, grown
    expected = hashlib.sha256()
    for _ in range(size // len(chunk)):
        expected.update(chunk)
    digest = hashlib.sha256()
    with httpx.stream("GET", f"{server.url}/{bucket.bucket}/big/big.bin") as got:
        for part in got.iter_bytes():
            digest.update(part)
    assert digest.hexdigest() == expected.hexdigest()


def test_a_lease_left_by_a_dead_node_is_taken_over(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    token = issue(prefix="dead/")
    url = create(server.url, bucket.bucket, token, 4, **{"Upload-Metadata": meta(filename="d")}).headers[
        "Location"
    ]
    upload_id = url.rsplit("/", 1)[1]
    # a node died mid-PATCH: its lease stays in the catalog, no longer renewed
    admin.catalog.update_session(
        upload_id, state="lock-0123456789", updated_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    r = patch(url, token, 0, b"abcd")
    assert r.status_code == 204, r.text
    assert read(server, bucket.bucket, "dead/d").content == b"abcd"


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_head_completes_an_upload_whose_commit_failed(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    """Every byte recorded but no object (the last PATCH met an outage while committing): a client
    that re-asks the offset sees it full and stops, so HEAD completes the upload first."""
    token = issue(prefix="late/")
    url = create(server.url, bucket.bucket, token, 4, **{"Upload-Metadata": meta(filename="l")}).headers[
        "Location"
    ]
    session = admin.catalog.get_session(url.rsplit("/", 1)[1])
    assert session is not None
    asyncio.run(admin.put_part(session, 0, _one_chunk(b"late")))  # the parts of that failed PATCH
    assert read(server, bucket.bucket, "late/l").status_code == 404
    r = head(url, token)
    assert r.status_code == 200
    assert r.headers["Upload-Offset"] == "4"
    assert read(server, bucket.bucket, "late/l").content == b"late"


def test_creation_with_upload_cut_short_leaves_nothing(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, admin: Gateway
) -> None:
    """A client that never got the creation's answer does not know the upload's URL: nothing of
    it stays, and the token's only use is given back."""
    token = issue(prefix="lost/", max_uses=1)
    lines = (
        f"POST /v1/tus/{bucket.bucket}/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Length: 100000\r\nUpload-Metadata: {meta(filename='lost')}\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(lines.encode() + b"x" * 30_000)
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    again = create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="lost")})
    while again.status_code != 201 and time.monotonic() < deadline:
        time.sleep(0.2)
        again = create(server.url, bucket.bucket, token, 3, **{"Upload-Metadata": meta(filename="lost")})
    assert again.status_code == 201, again.text
    row = admin.catalog.get_bucket(bucket.bucket)
    assert row is not None
    everything = admin.catalog.stale_sessions(datetime.now(UTC) + timedelta(days=1), limit=10_000)
    mine = [i for i in everything if (found := admin.catalog.get_session(i)) and found.bucket_id == row.id]
    assert mine == [again.headers["Location"].rsplit("/", 1)[1]]


def test_a_token_from_the_v1_api_uploads_through_tuspy(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway, tmp_path: Path
) -> None:
    """The whole path an app takes: its backend asks ``/v1`` for an upload token with its API key,
    the client uploads with it."""
    from mediagate.core import apikeys

    _, api_key = apikeys.create_key(admin.catalog, bucket=bucket.bucket, scopes=["write"])
    issued = httpx.post(
        f"{server.url}/v1/buckets/{bucket.bucket}/upload-tokens",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"ttl": 900, "max_uses": 1, "prefix": "app/", "max_size": 1_000_000},
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    data = random_bytes(200_000)
    uploader = tus_client(server, bucket.bucket, token).uploader(
        file_path=str(write_file(tmp_path, "photo.raw", data)), metadata={"filename": "photo.raw"}
    )
    uploader.upload()
    assert read(server, bucket.bucket, "app/photo.raw").content == data
    listed = httpx.get(
        f"{server.url}/v1/buckets/{bucket.bucket}/upload-tokens",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert [t["uses"] for t in listed.json()["upload_tokens"]] == [1]


def test_an_empty_file_is_complete_at_creation(
    server: LiveServer, bucket: BucketCredentials, issue: Issue
) -> None:
    token = issue(prefix="empty/")
    r = create(server.url, bucket.bucket, token, 0, **{"Upload-Metadata": meta(filename="nothing.txt")})
    assert r.status_code == 201, r.text
    assert r.headers["Upload-Offset"] == "0"
    got = read(server, bucket.bucket, "empty/nothing.txt")
    assert got.status_code == 200
    assert got.content == b""


HOSTILE: list[tuple[str, str, dict[str, str]]] = [
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "-1"}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "9" * 30}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "9" * 19}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Defer-Length": "1"}),
    ("POST", "/v1/tus/{b}/", {"Upload-Defer-Length": "2"}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Metadata": "filename ***"}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Metadata": "a b c"}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Metadata": "filename Lw==,filename Lw=="}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Metadata": "filename " + "QQ==" * 2000}),
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Metadata": "filename Li4="}),  # ".."
    ("POST", "/v1/tus/{b}/", {"Upload-Length": "3", "Upload-Metadata": "filename /w=="}),  # not UTF-8
    ("POST", "/v1/tus/no-such-bucket/", {"Upload-Length": "3"}),
    ("POST", "/v1/tus/%00/", {"Upload-Length": "3"}),
    ("HEAD", "/v1/tus/{b}/%2e%2e/%2e%2e/etc/passwd", {}),
    ("HEAD", "/v1/tus/{b}/" + "f" * 32 + "/extra", {}),
    ("HEAD", "/v1/tus/{b}/%0a", {}),
    ("PATCH", "/v1/tus/{b}/{u}", {"Upload-Offset": "x", "Content-Type": "application/offset+octet-stream"}),
    (
        "PATCH",
        "/v1/tus/{b}/{u}",
        {"Upload-Offset": "99999999999999999999", "Content-Type": "application/offset+octet-stream"},
    ),
    ("PATCH", "/v1/tus/{b}/{u}", {"Content-Type": "application/offset+octet-stream"}),
    (
        "PATCH",
        "/v1/tus/{b}/{u}",
        {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Upload-Checksum": "md5"},
    ),
    (
        "PATCH",
        "/v1/tus/{b}/{u}",
        {
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": "md5 !!!",
        },
    ),
    (
        "PATCH",
        "/v1/tus/{b}/{u}",
        {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Upload-Length": "1"},
    ),
    ("DELETE", "/v1/tus/{b}/", {}),
    ("GET", "/v1/tus/{b}/{u}", {}),
]


@pytest.mark.parametrize(("method", "path", "extra"), HOSTILE)
def test_hostile_requests_get_clear_errors(
    server: LiveServer, bucket: BucketCredentials, issue: Issue, method: str, path: str, extra: dict[str, str]
) -> None:
    token = issue()
    upload = create(server.url, bucket.bucket, token, 8, **{"Upload-Metadata": meta(filename="h")})
    upload_id = upload.headers["Location"].rsplit("/", 1)[1]
    target = path.format(b=bucket.bucket, u=upload_id)
    r = httpx.request(
        method,
        server.url + target,
        headers={**auth(token), **extra},
        content=b"abc" if method == "PATCH" else None,
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["Tus-Resumable"] == "1.0.0"
    if method != "HEAD":
        assert r.json()["error"]["code"]


# -- tokens that may not overwrite ---------------------------------------------------------------


def put_with_key(server: LiveServer, admin: Gateway, bucket: str, key: str, data: bytes) -> None:
    """Someone else's object, stored with an API key."""
    from mediagate.core import apikeys

    _, secret = apikeys.create_key(admin.catalog, bucket=bucket, scopes=["write"])
    r = httpx.put(
        f"{server.url}/v1/buckets/{bucket}/objects/{key}",
        content=data,
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert r.status_code == 201, r.text


def uses(admin: Gateway, bucket: str) -> list[int]:
    from mediagate.core import uploadtokens

    return [t.uses for t in uploadtokens.list_upload_tokens(admin.catalog, bucket)]


def test_a_token_without_overwrite_learns_at_creation_that_the_key_is_taken(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway, issue: Issue, tmp_path: Path
) -> None:
    b = bucket.bucket
    put_with_key(server, admin, b, "uploads/theirs.bin", b"someone else's")
    token = issue(prefix="uploads/", max_uses=2)  # overwrite defaults to false
    uploader = tus_client(server, b, token).uploader(
        file_path=str(write_file(tmp_path, "theirs.bin", b"replaced")), metadata={"filename": "theirs.bin"}
    )
    with pytest.raises(TusCommunicationError) as caught:
        uploader.upload()
    assert caught.value.status_code == 409
    refused = create(server.url, b, token, 8, **{"Upload-Metadata": meta(filename="theirs.bin")})
    assert refused.status_code == 409 and "Location" not in refused.headers
    assert refused.json()["error"]["code"] == "key_exists"
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert read(server, b, "uploads/theirs.bin").content == b"someone else's"
    assert uses(admin, b) == [0]


def test_a_key_taken_during_the_upload_is_refused_at_completion(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway, issue: Issue
) -> None:
    b = bucket.bucket
    token = issue(key="uploads/late.bin", max_uses=1)
    made = create(server.url, b, token, 6)
    assert made.status_code == 201, made.text
    url = made.headers["Location"]
    assert patch(url, token, 0, b"abc").status_code == 204
    put_with_key(server, admin, b, "uploads/late.bin", b"first")  # taken meanwhile
    last = patch(url, token, 3, b"def")
    assert last.status_code == 409
    assert set(last.json()) == {"error"} and last.json()["error"]["code"] == "key_exists"
    assert last.headers["Tus-Resumable"] == "1.0.0"
    assert read(server, b, "uploads/late.bin").content == b"first"
    assert head(url, token).status_code in (404, 410)  # the upload ended, nothing of it stays
    assert uses(admin, b) == [0]


def test_a_token_issued_with_overwrite_replaces_through_tuspy(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway, issue: Issue, tmp_path: Path
) -> None:
    b = bucket.bucket
    put_with_key(server, admin, b, "avatars/u1.bin", b"old")
    token = issue(key="avatars/u1.bin", overwrite=True)
    uploader = tus_client(server, b, token).uploader(
        file_path=str(write_file(tmp_path, "u1.bin", b"new avatar")), metadata={"filename": "u1.bin"}
    )
    uploader.upload()
    assert read(server, b, "avatars/u1.bin").content == b"new avatar"


def test_racing_tus_uploads_of_one_key_store_exactly_one(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway, issue: Issue
) -> None:
    """Eight uploads created while the key is free all pass the creation check; their commits are
    insert-only, so one is stored and seven are 409 ``key_exists``, their uses given back."""
    from concurrent.futures import ThreadPoolExecutor

    b = bucket.bucket
    token = issue(key="race/same.bin", max_uses=8)
    urls = []
    for _ in range(8):
        made = create(server.url, b, token, 8)
        assert made.status_code == 201, made.text
        urls.append(made.headers["Location"])

    def finish(n: int) -> httpx.Response:
        return patch(urls[n], token, 0, f"upload {n}".encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(finish, range(8)))
    won = [n for n, r in enumerate(answers) if r.status_code == 204]
    assert len(won) == 1, [r.text for r in answers]
    assert all(r.json()["error"]["code"] == "key_exists" for r in answers if r.status_code != 204)
    assert read(server, b, "race/same.bin").content == f"upload {won[0]}".encode()
    assert uses(admin, b) == [1]
