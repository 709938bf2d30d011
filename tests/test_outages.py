"""Infrastructure faults, for real: S3 out of reach, PostgreSQL out of reach, a full disk.

During each outage every dialect answers in its own error shape with 503 (507 for a full disk),
the log gets exactly one line per failed request (its access line, naming the cause; no
traceback), a keep-alive client's next request works, ``/healthz`` says which dependency is down
while ``/livez`` stays 200, and once the dependency is back uploads work again without a restart.

Faults are real: a TCP proxy between mediagate and the dependency is cut (connections dropped,
then refused), and a disk is filled (a small tmpfs where mounting is permitted; otherwise a file
size limit on the server process, which makes writes fail the same way with EFBIG).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import POSTGRES_URL, LiveServer, make_home, staging_files
from tests.support import uploads
from tests.support.fulldisk import FileSizeLimit, FullDisk, SmallTmpfs
from tests.support.moto import MotoServer, new_bucket_name
from tests.support.pg import fresh_schema
from tests.support.proxy import TcpProxy
from tests.support.serverlog import access_record, mark, records_since

JSON_LOGS = {"MEDIAGATE_LOG_FORMAT": "json"}
DATA = b"outage test bytes " * 64


def new_bucket(home: Path, **settings: Any) -> BucketCredentials:
    gw = build_gateway(make_home(home, **settings), migrate=False)
    try:
        return create_bucket(gw.catalog, gw.secrets, f"b{uuid.uuid4().hex[:12]}")
    finally:
        gw.catalog.close()


def assert_one_quiet_line(
    server: LiveServer, offset: int, resp: httpx.Response, status: int, code: str
) -> None:
    """The failed request left one access line, at WARNING, naming the error and its cause, and the
    log holds no traceback and nothing but JSON lines (uvicorn's "Exception in ASGI application"
    would be plain text)."""
    record = access_record(server, offset, resp.headers["x-request-id"])
    assert record["status"] == status and record["level"] == "warning", record
    assert record["reason"].startswith(f"{code}: "), record
    assert record["cause"], record
    assert not any("traceback" in r or "Traceback" in r.get("msg", "") for r in records_since(server, offset))


def assert_next_request_works(client: httpx.Client, failed: httpx.Response) -> None:
    """A keep-alive client carries on: either the connection stayed usable or the answer said
    ``Connection: close`` (httpx then opens a new one); a silently dropped connection fails here."""
    assert client.get("/livez").status_code == 200


@dataclass
class Case:
    name: str
    upload: uploads.Upload
    check: Any


def cases(server: LiveServer, status: int) -> list[Case]:
    """Each dialect's upload and the check of its error shape for ``status`` (503 or 507)."""
    wantu_code = {503: "ServiceUnavailable", 507: "InsufficientStorage"}[status]
    imagex_code = {503: "ServiceUnavailable", 507: "InsufficientStorage"}[status]
    return [
        Case("upyun-rest", uploads.upyun_rest, lambda r: uploads.assert_upyun_rest_error(r, status)),
        Case("upyun-form", uploads.upyun_form, lambda r: uploads.assert_upyun_form_error(r, status)),
        Case("wantu", uploads.wantu, lambda r: uploads.assert_wantu_error(r, status, wantu_code)),
        Case(
            "imagex",
            uploads.imagex(server),
            lambda r: uploads.assert_imagex_upload_error(r, status, imagex_code),
        ),
    ]


# -- S3 ------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_outage(
    s3_server: MotoServer, tmp_path: Path
) -> Iterator[tuple[LiveServer, TcpProxy, BucketCredentials]]:
    proxy = TcpProxy(s3_server.port).start()
    env = s3_server.env(new_bucket_name()) | {"MEDIAGATE_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    creds = new_bucket(tmp_path / "home")
    server = LiveServer(tmp_path / "home", env=env | JSON_LOGS).start()
    yield server, proxy, creds
    server.stop()
    proxy.cut()


def test_s3_down_is_each_dialects_503_and_recovers(
    s3_outage: tuple[LiveServer, TcpProxy, BucketCredentials],
) -> None:
    server, proxy, creds = s3_outage
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert uploads.upyun_rest(client, creds, DATA).status_code == 200
        proxy.cut()
        for case in cases(server, 503):
            offset = mark(server)
            resp = case.upload(client, creds, DATA)
            body = case.check(resp)
            assert "storage" in str(body).lower(), (case.name, body)
            assert_one_quiet_line(server, offset, resp, 503, "storage_unavailable")
            assert_next_request_works(client, resp)

        offset = mark(server)
        read = client.get(f"/{creds.bucket}/outage/rest.bin")  # public read: the plain JSON error
        assert read.status_code == 503 and read.json()["code"] == 503, read.text
        assert_one_quiet_line(server, offset, read, 503, "storage_unavailable")

        health = client.get("/healthz")
        assert health.status_code == 503, health.text
        assert health.json()["status"] == "unavailable"
        assert health.json()["catalog"] == "ok" and health.json()["storage"].startswith("unavailable")
        assert client.get("/livez").status_code == 200

        proxy.restore()
        assert client.get("/healthz").json() == {
            "status": "ok",
            "catalog": "ok",
            "storage": "ok",
            "disk": "ok",
        }
        for case in cases(server, 503):
            assert case.upload(client, creds, DATA).status_code == 200, case.name
    assert "Traceback" not in server.log()


# -- PostgreSQL ----------------------------------------------------------------------------------------


@pytest.fixture
def pg_outage(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy, BucketCredentials]]:
    with fresh_schema() as url:
        direct = make_url(url)
        proxy = TcpProxy(direct.port or 5432).start()
        proxied = direct.set(port=proxy.port).render_as_string(hide_password=False)
        creds = new_bucket(tmp_path / "home", database_url=url)
        env = {"MEDIAGATE_DATABASE_URL": proxied} | JSON_LOGS
        server = LiveServer(tmp_path / "home", env=env).start()
        yield server, proxy, creds
        server.stop()
        proxy.cut()


@pytest.mark.postgres
def test_database_down_is_each_dialects_503_and_recovers(
    pg_outage: tuple[LiveServer, TcpProxy, BucketCredentials],
) -> None:
    server, proxy, creds = pg_outage
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert uploads.upyun_rest(client, creds, DATA).status_code == 200
        proxy.cut()
        for case in cases(server, 503):
            offset = mark(server)
            resp = case.upload(client, creds, DATA)
            if case.name == "imagex":  # ApplyImageUpload itself needs the catalog
                body = uploads.assert_imagex_action_error(resp, 503, "ServiceUnavailable")
            else:
                body = case.check(resp)
            assert "catalog" in str(body).lower(), (case.name, body)
            assert_one_quiet_line(server, offset, resp, 503, "catalog_unavailable")
            assert_next_request_works(client, resp)

        health = client.get("/healthz")
        assert health.status_code == 503, health.text
        assert health.json()["catalog"].startswith("unavailable") and health.json()["storage"] == "ok"
        assert client.get("/livez").status_code == 200

        proxy.restore()
        assert client.get("/healthz").status_code == 200
        for case in cases(server, 503):
            assert case.upload(client, creds, DATA).status_code == 200, case.name
    assert "Traceback" not in server.log()


@pytest.mark.postgres
def test_database_restart_is_survived(pg_outage: tuple[LiveServer, TcpProxy, BucketCredentials]) -> None:
    """PostgreSQL restarting ends every session (``pg_terminate_backend``, as a shutdown does): the
    pool notices and reconnects, and no client sees an error for it."""
    server, proxy, creds = pg_outage
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for case in cases(server, 503):
            assert case.upload(client, creds, DATA).status_code == 200, case.name
        ports = proxy.upstream_ports()
        assert ports
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                ended = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE client_addr = '127.0.0.1' AND client_port = ANY(:p)"
                    ),
                    {"p": ports},
                ).scalar()
        finally:
            admin.dispose()
        assert ended
        offset = mark(server)
        for case in cases(server, 503):
            assert case.upload(client, creds, DATA).status_code == 200, case.name
    assert not any(r["level"] != "info" for r in records_since(server, offset))


# -- a full disk ---------------------------------------------------------------------------------------


@pytest.fixture(params=["tmpfs", "file-size-limit"])
def full_disk(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LiveServer, FullDisk, BucketCredentials]]:
    disk: FullDisk = SmallTmpfs(tmp_path) if request.param == "tmpfs" else FileSizeLimit()
    home = tmp_path / "home"
    try:
        disk.prepare(home)
        creds = new_bucket(home)
        server = LiveServer(home, env=JSON_LOGS).start()
        try:
            yield server, disk, creds
        finally:
            server.stop()
    finally:
        disk.close()


def test_full_disk_is_each_dialects_507_and_recovers(
    full_disk: tuple[LiveServer, FullDisk, BucketCredentials],
) -> None:
    server, disk, creds = full_disk
    big = b"x" * (2 * 1024 * 1024)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        disk.fill(server)
        for case in cases(server, 507):
            offset = mark(server)
            resp = case.upload(client, creds, big)
            body = case.check(resp)
            assert "space" in str(body).lower(), (case.name, body)
            record = access_record(server, offset, resp.headers["x-request-id"])
            assert record["status"] == 507 and record["reason"].startswith("insufficient_storage: "), record
            assert_next_request_works(client, resp)
        assert not staging_files(server.home), "a failed upload left a staging file"
        if isinstance(disk, SmallTmpfs):  # a file size limit leaves the disk's free space as it was
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["disk"].startswith("unavailable: no space")

        disk.free(server)
        for case in cases(server, 507):
            assert case.upload(client, creds, DATA).status_code == 200, case.name
    assert "Traceback" not in server.log()


def test_a_disk_gone_read_only_is_each_dialects_503(tmp_path: Path) -> None:
    """A filesystem remounted read-only (what ext4 does after I/O errors) is an outage, not a bug."""
    disk = SmallTmpfs(tmp_path)
    home = tmp_path / "home"
    try:
        disk.prepare(home)
        creds = new_bucket(home)
        server = LiveServer(home, env=JSON_LOGS).start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                subprocess.run(["mount", "-o", "remount,ro", str(disk.mount)], check=True)
                for case in cases(server, 503):
                    offset = mark(server)
                    resp = case.upload(client, creds, DATA)
                    case.check(resp)
                    assert_one_quiet_line(server, offset, resp, 503, "storage_unavailable")
                    assert_next_request_works(client, resp)
                subprocess.run(["mount", "-o", "remount,rw", str(disk.mount)], check=True)
                for case in cases(server, 503):
                    assert case.upload(client, creds, DATA).status_code == 200, case.name
        finally:
            server.stop()
        assert "Traceback" not in server.log()
    finally:
        disk.close()


def test_a_full_disk_while_processing_a_variant_is_507_not_a_corrupt_image(tmp_path: Path) -> None:
    """On-the-fly processing (``key!/fw/…``) on a full disk: before, the failed write of the
    variant was answered 415 'the image is malformed or truncated' for a good image. It is the
    public face's 507, one quiet log line, and the variant is made once there is room again."""
    import io

    from PIL import Image

    from tests.protocols.upyun.rest_client import object_uri, signed

    home = tmp_path / "home"
    creds = new_bucket(home)
    server = LiveServer(home, env=JSON_LOGS).start()
    disk = FileSizeLimit()
    noise = io.BytesIO()
    Image.effect_noise((1100, 1100), 90).convert("RGB").save(noise, "PNG")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            uri = object_uri(creds.bucket, "noise.png")
            assert signed(client, creds, "PUT", uri, content=noise.getvalue()).status_code == 200
            variant = f"/{creds.bucket}/noise.png!/fw/1090/format/png"
            disk.fill(server)
            offset = mark(server)
            resp = client.get(variant)
            assert resp.status_code == 507, resp.text
            assert set(resp.json()) == {"code", "message"} and "space" in resp.json()["message"]
            assert_one_quiet_line(server, offset, resp, 507, "insufficient_storage")
            assert_next_request_works(client, resp)
            disk.free(server)
            made = client.get(variant)
            assert made.status_code == 200 and made.headers["content-type"] == "image/png"
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_s3_down_for_reads_copies_and_variants_is_503(
    s3_outage: tuple[LiveServer, TcpProxy, BucketCredentials],
) -> None:
    """Beyond uploads: a processed variant, a REST read, a copy and a Wantu file lookup while S3
    is out of reach each get their dialect's 503 and one quiet log line, and work again after."""
    import io

    from PIL import Image

    from tests.protocols.upyun.rest_client import object_uri, signed

    server, proxy, creds = s3_outage
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 99, 199)).save(picture, "PNG")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        uri = object_uri(creds.bucket, "pic.png")
        assert signed(client, creds, "PUT", uri, content=picture.getvalue()).status_code == 200
        proxy.cut()
        variant = client.get(f"/{creds.bucket}/pic.png!/fw/32/format/webp")
        assert variant.status_code == 503 and variant.json()["code"] == 503, variant.text
        offset = mark(server)
        read = signed(client, creds, "GET", uri)
        assert read.status_code == 503 and set(read.json()) == {"msg", "code", "id"}, read.text
        assert_one_quiet_line(server, offset, read, 503, "storage_unavailable")
        copy_uri = object_uri(creds.bucket, "copy.png")
        copy = signed(
            client, creds, "PUT", copy_uri, headers={"X-Upyun-Copy-Source": f"/{creds.bucket}/pic.png"}
        )
        assert copy.status_code == 503 and set(copy.json()) == {"msg", "code", "id"}, copy.text
        assert_next_request_works(client, copy)
        proxy.restore()
        again = client.get(f"/{creds.bucket}/pic.png!/fw/32/format/webp")
        assert again.status_code == 200 and again.headers["content-type"] == "image/webp"
        assert (
            signed(
                client, creds, "PUT", copy_uri, headers={"X-Upyun-Copy-Source": f"/{creds.bucket}/pic.png"}
            ).status_code
            == 200
        )
    assert "Traceback" not in server.log()


@pytest.mark.postgres
def test_database_down_for_reads_metadata_and_management_is_503(
    pg_outage: tuple[LiveServer, TcpProxy, BucketCredentials],
) -> None:
    """With the catalog out of reach: a public read, a variant, a REST HEAD, a PATCH of metadata, a
    Wantu rename and an ImageX commit get their dialect's 503 (never a 500 or a traceback)."""
    import json
    import time as clock

    from tests.protocols.imagex.conftest import png
    from tests.protocols.imagex.conftest import signed as imagex_signed
    from tests.protocols.upyun.rest_client import object_uri, sign, signed
    from tests.protocols.wantu.client import WantuClient

    server, proxy, creds = pg_outage
    wantu = WantuClient(server.url, creds.access_key_id, creds.secret_access_key, creds.bucket)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        uri = object_uri(creds.bucket, "pic.png")
        assert signed(client, creds, "PUT", uri, content=png(16, 16)).status_code == 200
        commit_params = {"Action": "CommitImageUpload", "Version": "2018-08-01", "ServiceId": creds.bucket}
        proxy.cut()
        clock.sleep(2.5)  # past the bucket caches (bucketconf, gateway)
        for resp in (client.get(f"/{creds.bucket}/pic.png"), client.get(f"/{creds.bucket}/pic.png!/fw/8")):
            assert resp.status_code == 503 and resp.json()["code"] == 503, resp.text
        head = client.head(uri, headers=sign(creds, "HEAD", uri))
        assert head.status_code == 503
        patch_uri = uri + "?metadata=merge"
        patch = signed(client, creds, "PATCH", patch_uri, headers={"x-upyun-meta-a": "1"})
        assert patch.status_code == 503 and set(patch.json()) == {"msg", "code", "id"}, patch.text
        rename = wantu.manage(
            "POST", f"/3.0/files/{wantu.file_rid('/', 'pic.png')}/rename/{wantu.file_rid('/', 'b.png')}"
        )
        assert rename.status_code == 503 and rename.json()["code"], rename.text
        body = json.dumps({"SessionKey": "x"}).encode()
        commit = imagex_signed(
            server, "POST", commit_params, ak=creds.access_key_id, sk=creds.secret_access_key, body=body
        )
        assert commit.status_code == 503, commit.text
        assert_next_request_works(client, commit)
        proxy.restore()
        assert client.get(f"/{creds.bucket}/pic.png!/fw/8").status_code == 200
    wantu.close()
    assert "Traceback" not in server.log()


@pytest.mark.postgres
def test_database_down_is_the_v1_and_tus_503_and_spends_no_token_use(
    pg_outage: tuple[LiveServer, TcpProxy, BucketCredentials],
) -> None:
    """The /v1 API and tus with the catalog unreachable: the 503 in their own error shape (tus with
    Tus-Resumable), one quiet access line, and an upload token refused for the outage still has
    every use once the catalog is back."""
    from mediagate.config import Settings
    from tests.protocols.native.api import client, error_of, new_key

    server, proxy, creds = pg_outage
    gw = build_gateway(Settings(home=server.home, database_url=server.env["MEDIAGATE_DATABASE_URL"]))
    try:
        key = new_key(gw, creds.bucket, "read,write")
    finally:
        gw.catalog.close()
    b = creds.bucket
    with client(server.url, key) as api:
        token = api.post(f"/v1/buckets/{b}/upload-tokens", json={"max_uses": 2}).json()["token"]
        proxy.cut()
        offset = mark(server)
        assert error_of(api.get("/v1/me")) == (503, "catalog_unavailable")
        assert error_of(api.get(f"/v1/buckets/{b}/objects")) == (503, "catalog_unavailable")
        with client(server.url, token) as browser:
            put = browser.put(f"/v1/buckets/{b}/objects/o.txt", content=b"outage")
            assert error_of(put) == (503, "catalog_unavailable")
            assert_one_quiet_line(server, offset, put, 503, "catalog_unavailable")
            tus = browser.post(
                f"/v1/tus/{b}/",
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Length": "2",
                    "Upload-Metadata": "filename YS50eHQ=",
                },
            )
            assert error_of(tus) == (503, "catalog_unavailable") and tus.headers["tus-resumable"] == "1.0.0"
            proxy.restore()
            assert api.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"][0]["uses"] == 0
            for name in ("one.txt", "two.txt"):
                assert browser.put(f"/v1/buckets/{b}/objects/{name}", content=b"back").status_code == 201
            assert error_of(browser.put(f"/v1/buckets/{b}/objects/three.txt", content=b"x")) == (
                403,
                "token_used_up",
            )
    assert "Traceback" not in server.log()
