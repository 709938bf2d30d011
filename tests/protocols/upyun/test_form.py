"""UPYUN FORM API (``POST /<bucket>``) against a live server: the real upyun SDK and hand-built
multipart bodies, read back over the public path."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
import upyun
from PIL import Image

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from mediagate.protocols.upyun.signing import callback_sign, hmac_signature
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import (
    Receiver,
    authorization,
    http_date,
    keys_in,
    multipart,
    policy_of,
    post,
    signature,
    staging_is_empty,
    upload,
    wait_until,
)

BODY = bytes(range(256)) * 37 + b"tail"


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def sdk(server: LiveServer, creds: BucketCredentials) -> upyun.UpYun:
    return upyun.UpYun(creds.bucket, creds.operator, creds.password, endpoint=server.endpoint)


def read(client: httpx.Client, creds: BucketCredentials, key: str) -> bytes:
    r = client.get(f"/{creds.bucket}/{key.lstrip('/')}")
    assert r.status_code == 200, r.text
    return r.content


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(buf, "PNG")
    return buf.getvalue()


def expected_sign(creds: BucketCredentials, result: dict[str, object]) -> str:
    return callback_sign(
        int(str(result["code"])),
        str(result["message"]),
        str(result["url"]),
        int(str(result["time"])),
        creds.form_api_secret,
        str(result["ext-param"]) if "ext-param" in result else None,
    )


# -- the real SDK --------------------------------------------------------------------------------------


def test_sdk_form_upload_reads_back_identically(
    server: LiveServer, client: httpx.Client, bucket: BucketCredentials, tmp_path: Path
) -> None:
    source = tmp_path / "photo data.bin"
    source.write_bytes(BODY)
    with open(source, "rb") as f:
        result = sdk(server, bucket).put("/sdk/photo data.bin", f, form=True)
    assert result["code"] == 200
    assert result["message"] == "ok"
    assert result["url"] == "/sdk/photo data.bin"
    assert result["file_size"] == len(BODY)
    assert abs(int(result["time"]) - time.time()) < 60
    assert "sign" not in result  # the SDK signs with authorization: the new scheme, no sign field
    assert read(client, bucket, "sdk/photo data.bin") == BODY


def test_sdk_form_upload_with_policy_kwargs(
    server: LiveServer, client: httpx.Client, bucket: BucketCredentials, tmp_path: Path
) -> None:
    """The SDK puts kwargs into the policy but never signs content-md5: accepted anyway."""
    source = tmp_path / "pic.png"
    image = png(64, 48)
    source.write_bytes(image)
    with open(source, "rb") as f:
        result = sdk(server, bucket).put(
            "/{year}/{filemd5}{.suffix}",
            f,
            form=True,
            **{
                "content-md5": hashlib.md5(image).hexdigest(),
                "image-width-range": "1,100",
                "ext-param": "client_7",
                "x-upyun-meta-owner": "alice",
            },
        )
    key = f"{datetime.now(UTC).year}/{hashlib.md5(image).hexdigest()}.png"
    assert result["url"] == "/" + key
    assert (result["image-width"], result["image-height"], result["image-type"]) == (64, 48, "PNG")
    assert result["ext-param"] == "client_7"
    assert "sign" not in result
    assert read(client, bucket, key) == image


def test_sdk_form_upload_with_wrong_password_is_refused(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, tmp_path: Path
) -> None:
    source = tmp_path / "x.txt"
    source.write_bytes(b"hello")
    bad = upyun.UpYun(bucket.bucket, bucket.operator, "not-the-password", endpoint=server.endpoint)
    with open(source, "rb") as f, pytest.raises(upyun.UpYunServiceException) as err:
        bad.put("/x.txt", f, form=True)
    assert err.value.status == 401
    assert json.loads(err.value.err)["code"] == 401
    assert err.value.request_id != "Unknown"
    assert keys_in(admin, bucket.bucket) == []


# -- hand-built forms ----------------------------------------------------------------------------------


def test_seed_layout_policy_signature_file_last(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    r = upload(client, bucket, BODY, key="/seed/a.bin")
    assert r.status_code == 200, r.text
    result = r.json()
    assert list(result)[:4] == ["code", "message", "url", "time"]
    assert result["url"] == "/seed/a.bin"
    assert result["mimetype"] == "application/octet-stream"
    assert "image-width" not in result
    assert result["sign"] == expected_sign(bucket, result)
    assert read(client, bucket, "seed/a.bin") == BODY
    assert keys_in(admin, bucket.bucket) == ["seed/a.bin"]


def test_authorization_field_signed_over_either_uri_and_optional_md5(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    md5 = hashlib.md5(BODY).hexdigest()
    for n, (uri, path, with_md5) in enumerate(
        [
            (f"/{bucket.bucket}", f"/{bucket.bucket}", False),
            (f"/{bucket.bucket}/", f"/{bucket.bucket}/", True),
            (f"/{bucket.bucket}", f"/{bucket.bucket}/", True),
        ]
    ):
        date = http_date()
        p = policy_of(bucket, f"/auth/{n}.bin", date=date, content_md5=md5)
        auth = authorization(bucket, p, uri=uri, date=date, content_md5=md5 if with_md5 else "")
        r = post(
            client,
            bucket.bucket,
            [("policy", p), ("authorization", auth), ("file", ("a.bin", BODY))],
            path=path,
        )
        assert r.status_code == 200, r.text
        assert read(client, bucket, f"auth/{n}.bin") == BODY


def test_file_before_the_policy_is_prebuffered_then_authorised(
    server: LiveServer, client: httpx.Client, bucket: BucketCredentials
) -> None:
    p = policy_of(bucket, "/first/{filename}{.suffix}")
    r = post(
        client,
        bucket.bucket,
        [("file", ("early.dat", BODY)), ("policy", p), ("signature", signature(bucket, p))],
    )
    assert r.status_code == 200, r.text
    assert r.json()["url"] == "/first/early.dat"
    assert read(client, bucket, "first/early.dat") == BODY
    assert wait_until(lambda: staging_is_empty(server.home))


def test_text_fields_sent_as_file_parts_like_the_sdk(client: httpx.Client, bucket: BucketCredentials) -> None:
    p = policy_of(bucket, "/parts.bin")
    fields = [("policy", ("policy", p.encode())), ("signature", ("signature", signature(bucket, p).encode()))]
    r = post(client, bucket.bucket, [*fields, ("file", ("x", BODY))])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("file_first", [False, True])
def test_b64encoded_file_is_decoded(
    client: httpx.Client, bucket: BucketCredentials, file_first: bool
) -> None:
    import base64

    encoded = base64.b64encode(BODY)
    encoded = b"\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    p = policy_of(bucket, "/b64.bin", b64encoded="on")
    auth = [("policy", p), ("signature", signature(bucket, p))]
    file = [("file", ("b64.txt", encoded))]
    r = post(client, bucket.bucket, file + auth if file_first else auth + file)
    assert r.status_code == 200, r.text
    assert r.json()["file_size"] == len(BODY)
    assert read(client, bucket, "b64.bin") == BODY


@pytest.mark.parametrize("file_first", [False, True])
def test_b64encoded_content_md5_names_the_text_as_sent(
    client: httpx.Client, bucket: BucketCredentials, admin: Gateway, file_first: bool
) -> None:
    """UPYUN (and the node SDK's own test) take content-md5 of the base64 text that is posted;
    the md5 of the decoded file is accepted too; any other digest is refused, storing nothing."""
    import base64

    encoded = base64.b64encode(BODY)
    digests = {
        "of the text": hashlib.md5(encoded).hexdigest(),
        "of the file": hashlib.md5(BODY).hexdigest(),
        "of neither": hashlib.md5(b"other").hexdigest(),
    }
    for n, (what, md5) in enumerate(digests.items()):
        key = f"/md5-{n}.bin"
        p = policy_of(bucket, key, b64encoded="on", content_md5=md5)
        auth = [("policy", p), ("signature", signature(bucket, p))]
        file = [("file", ("b64.txt", encoded))]
        r = post(client, bucket.bucket, file + auth if file_first else auth + file)
        if what == "of neither":
            assert r.status_code == 400, r.text
            assert "md5" in r.json()["message"].lower()
            assert key.lstrip("/") not in keys_in(admin, bucket.bucket)
        else:
            assert r.status_code == 200, (what, r.text)
            assert read(client, bucket, key) == BODY


def test_every_save_key_placeholder(client: httpx.Client, bucket: BucketCredentials) -> None:
    template = (
        "/{year}/{mon}/{day}/{hour}_{min}_{sec}/{filemd5}-{random}-{random32}/{filename}-{suffix}{.suffix}"
    )
    before = datetime.now(UTC)
    r = upload(client, bucket, BODY, filename="sample.jpg", key=template)
    after = datetime.now(UTC)
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    m = re.fullmatch(
        r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})_(\d{2})_(\d{2})/([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{32})/sample-jpg\.jpg",
        url,
    )
    assert m, url
    stamp = datetime(*(int(g) for g in m.groups()[:6]), tzinfo=UTC)
    assert before.replace(microsecond=0) <= stamp <= after
    assert m.group(7) == hashlib.md5(BODY).hexdigest()
    assert read(client, bucket, url) == BODY


def test_content_type_from_the_policy_is_stored(client: httpx.Client, bucket: BucketCredentials) -> None:
    r = upload(client, bucket, b"plain words", key="/doc.bin", content_type="application/x-custom")
    assert r.json()["mimetype"] == "application/x-custom"
    got = client.get(f"/{bucket.bucket}/doc.bin")
    assert got.headers["content-type"].startswith("application/x-custom")


def test_allow_file_type(client: httpx.Client, admin: Gateway, bucket: BucketCredentials) -> None:
    ok = upload(client, bucket, png(4, 4), filename="a.PNG", key="/ok.png", allow_file_type="jpg,png")
    assert ok.status_code == 200, ok.text
    refused = upload(client, bucket, b"text", filename="a.txt", key="/no.txt", allow_file_type="jpg,png")
    assert refused.status_code == 403
    assert refused.json()["code"] == 403
    assert keys_in(admin, bucket.bucket) == ["ok.png"]


def test_content_length_range_bounds_are_inclusive(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    assert upload(client, bucket, b"x" * 10, key="/lo", content_length_range="10,20").status_code == 200
    assert upload(client, bucket, b"x" * 20, key="/hi", content_length_range="10,20").status_code == 200
    small = upload(client, bucket, b"x" * 9, key="/small", content_length_range="10,20")
    big = upload(client, bucket, b"x" * 21, key="/big", content_length_range="10,20")
    assert (small.status_code, big.status_code) == (403, 403)
    assert sorted(keys_in(admin, bucket.bucket)) == ["hi", "lo"]


def test_large_file_mode_exact_length(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    assert upload(client, bucket, BODY, key="/exact", content_length=len(BODY)).status_code == 200
    short = upload(client, bucket, BODY, key="/short", content_length=len(BODY) + 1)
    long = upload(client, bucket, BODY, key="/long", content_length=len(BODY) - 1)
    assert (short.status_code, long.status_code) == (400, 400)
    assert keys_in(admin, bucket.bucket) == ["exact"]


def test_image_ranges_with_a_real_png(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    image = png(120, 80)
    r = upload(client, bucket, image, key="/img.png", image_width_range="100,200", image_height_range="50,80")
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["image-width"], result["image-height"], result["image-frames"]) == (120, 80, 1)
    assert result["image-type"] == "PNG"
    assert result["mimetype"] == "image/png"
    narrow = upload(client, bucket, image, key="/narrow.png", image_width_range="0,100")
    assert narrow.status_code == 403
    assert "width" in narrow.json()["message"]
    assert keys_in(admin, bucket.bucket) == ["img.png"]


def test_meta_and_ttl_are_stored(client: httpx.Client, admin: Gateway, bucket: BucketCredentials) -> None:
    extra = {"x-upyun-meta-owner": "alice", "x-upyun-meta-ttl": 3}
    r = upload(client, bucket, BODY, key="/meta.bin", **{k.replace("-", "_"): v for k, v in extra.items()})
    assert r.status_code == 200, r.text
    b = admin.catalog.get_bucket(bucket.bucket)
    assert b is not None
    obj = admin.catalog.get_object(b.id, "meta.bin")
    assert obj is not None
    assert obj.meta == {"owner": "alice", "ttl": "3"}
    assert obj.expires_at is not None
    lifetime = obj.expires_at.replace(tzinfo=UTC) - obj.created_at.replace(tzinfo=UTC)
    assert lifetime.total_seconds() == 3 * 86400


def test_content_secret_is_stored_and_guards_the_file(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    r = upload(client, bucket, BODY, key="/secret.bin", content_secret="s3cr3t")
    assert r.status_code == 200, r.text
    b = admin.catalog.get_bucket(bucket.bucket)
    assert b is not None
    obj = admin.catalog.get_object(b.id, "secret.bin")
    assert obj is not None and obj.content_secret == "s3cr3t"
    assert client.get(f"/{bucket.bucket}/secret.bin").status_code == 404
    assert read(client, bucket, "secret.bin!s3cr3t") == BODY


def test_same_key_twice_overwrites(client: httpx.Client, admin: Gateway, bucket: BucketCredentials) -> None:
    assert upload(client, bucket, b"first version", key="/same.txt").status_code == 200
    assert upload(client, bucket, b"second", key="/same.txt").status_code == 200
    assert read(client, bucket, "same.txt") == b"second"
    assert keys_in(admin, bucket.bucket) == ["same.txt"]


def test_ext_param_is_echoed_and_signed(client: httpx.Client, bucket: BucketCredentials) -> None:
    r = upload(client, bucket, BODY, key="/ext.bin", ext_param="clientId_42 中文")
    result = r.json()
    assert result["ext-param"] == "clientId_42 中文"
    assert result["sign"] == expected_sign(bucket, result)
    assert result["sign"] != callback_sign(200, "ok", "/ext.bin", result["time"], bucket.form_api_secret)


# -- return-url, notify-url, callback-url ------------------------------------------------------------------


def test_return_url_redirects_with_the_result_in_the_query(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    r = upload(client, bucket, png(8, 6), key="/ret.png", return_url="https://app.example/done?session=9#top")
    assert r.status_code == 303
    location = urlsplit(r.headers["location"])
    assert (location.scheme, location.netloc, location.path, location.fragment) == (
        "https",
        "app.example",
        "/done",
        "top",
    )
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["session"] == "9"
    assert (query["code"], query["message"], query["url"]) == ("200", "ok", "/ret.png")
    assert (query["image-width"], query["image-height"]) == ("8", "6")
    assert query["sign"] == expected_sign(bucket, query)
    assert read(client, bucket, "ret.png") == png(8, 6)


def test_errors_after_validation_go_to_return_url(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    r = upload(
        client,
        bucket,
        b"x" * 50,
        key="/r.bin",
        return_url="http://app.example/r",
        content_length_range="0,10",
    )
    assert r.status_code == 303
    query = {
        k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query, keep_blank_values=True).items()
    }
    assert query["code"] == "403"
    assert "size" in query["message"]
    assert query["url"] == ""
    assert keys_in(admin, bucket.bucket) == []


def _fields(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


def test_notify_url_posts_signed_fields_and_retries(client: httpx.Client, bucket: BucketCredentials) -> None:
    with Receiver([500, 200]) as receiver:
        date = http_date()
        p = policy_of(
            bucket, "/n.png", date=date, notify_url=receiver.url("/hook?src=upyun"), ext_param="cid_1"
        )
        auth = authorization(bucket, p, date=date)
        image = png(10, 20)
        r = post(client, bucket.bucket, [("policy", p), ("authorization", auth), ("file", ("n.png", image))])
        assert r.status_code == 200, r.text
        assert wait_until(lambda: len(receiver.requests) >= 2, timeout=10)
        first, second = receiver.requests[:2]
        assert first[2] == second[2]
        path, headers, body = second
        assert path == "/hook?src=upyun"
        assert headers["content-type"] == "application/x-www-form-urlencoded"
        fields = _fields(body)
        assert (fields["code"], fields["message"], fields["url"]) == ("200", "ok", "/n.png")
        assert (fields["image-width"], fields["image-height"], fields["ext-param"]) == ("10", "20", "cid_1")
        assert "sign" not in fields and "no-sign" not in fields  # the Authorization header signs it
        assert fields == {k: str(v) for k, v in r.json().items()}
        assert headers["content-md5"] == hashlib.md5(body).hexdigest()
        key = hashlib.md5(bucket.password.encode()).hexdigest()
        message = f"POST&/hook?src=upyun&{headers['date']}&{headers['content-md5']}"
        assert headers["authorization"] == f"UPYUN {bucket.operator}:{hmac_signature(key, message)}"
        time.sleep(0.5)
        assert len(receiver.requests) == 2


def test_notify_after_old_signature_has_sign_but_no_authorization(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    with Receiver() as receiver:
        r = upload(client, bucket, BODY, key="/old.bin", notify_url=receiver.url())
        assert r.status_code == 200
        assert wait_until(lambda: len(receiver.requests) == 1, timeout=5)
        _, headers, body = receiver.requests[0]
        assert "authorization" not in headers
        assert _fields(body)["sign"] == expected_sign(bucket, _fields(body))


def test_callback_url_answer_is_relayed(client: httpx.Client, bucket: BucketCredentials) -> None:
    with Receiver([201], body=b'{"record": 17}', content_type="application/json") as receiver:
        r = upload(client, bucket, BODY, key="/cb.bin", callback_url=receiver.url("/cb"))
        assert r.status_code == 201
        assert r.json() == {"record": 17}
        path, headers, body = receiver.requests[0]
        assert path == "/cb"
        assert "authorization" not in headers
        fields = _fields(body)
        assert fields["url"] == "/cb.bin"
        assert fields["sign"] == expected_sign(bucket, fields)
    assert read(client, bucket, "cb.bin") == BODY


def test_callback_url_timeout_is_reported_and_the_file_kept(
    client: httpx.Client, server_home: Settings, bucket: BucketCredentials
) -> None:
    with Receiver(delay=server_home.notify_timeout_seconds + 1.5) as receiver:
        started = time.monotonic()
        r = upload(client, bucket, BODY, key="/slow.bin", callback_url=receiver.url())
        elapsed = time.monotonic() - started
    assert r.status_code == 502
    result = r.json()
    assert result["code"] == 502
    assert "callback" in result["message"]
    assert result["url"] == "/slow.bin"
    assert elapsed < server_home.notify_timeout_seconds + 1.5
    assert read(client, bucket, "slow.bin") == BODY


def test_a_large_file_streams_with_flat_server_memory(
    server: LiveServer, client: httpx.Client, bucket: BucketCredentials
) -> None:
    size = 64 * 1024 * 1024
    chunk = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    p = policy_of(bucket, "/big.bin", content_length=size)
    prefix, content_type = multipart(
        [("policy", p), ("signature", signature(bucket, p)), ("file", ("big.bin", b""))]
    )
    cut = prefix.rindex(b"\r\n--")
    head, tail = prefix[:cut], prefix[cut:]

    def stream() -> Iterator[bytes]:
        yield head
        for _ in range(size // len(chunk)):
            yield chunk
        yield tail

    process = psutil.Process(server.process.pid if server.process else 0)
    before = process.memory_info().rss
    r = client.post(f"/{bucket.bucket}", content=stream(), headers={"Content-Type": content_type})
    grown = process.memory_info().rss - before
    assert r.status_code == 200, r.text
    assert r.json()["file_size"] == size
    assert grown < 32 * 1024 * 1024, grown
    digest = hashlib.sha256()
    with client.stream("GET", f"/{bucket.bucket}/big.bin") as got:
        for part in got.iter_bytes():
            digest.update(part)
    expected = hashlib.sha256()
    for _ in range(size // len(chunk)):
        expected.update(chunk)
    assert digest.hexdigest() == expected.hexdigest()


def test_no_sign_nor_no_sign_after_an_authorization_upload(
    client: httpx.Client, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Seed: with the new callback signature, ``sign``/``no-sign`` do not exist (with or without
    a form secret); the old signature still gets ``sign``."""
    date = http_date()
    p = policy_of(bucket, "/nosign.bin", date=date, return_url="http://app.example/back")
    fields = [("policy", p), ("authorization", authorization(bucket, p, date=date)), ("file", ("x", BODY))]
    r = post(client, bucket.bucket, fields)
    assert r.status_code == 303, r.text
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["url"] == ["/nosign.bin"]
    assert "sign" not in query and "no-sign" not in query
    old = upload(client, bucket, BODY, key="/signed.bin", return_url="http://app.example/back")
    assert old.status_code == 303
    query = {k: v[0] for k, v in parse_qs(urlsplit(old.headers["location"]).query).items()}
    assert query["sign"] == expected_sign(bucket, query)
    b = admin.catalog.get_bucket(bucket.bucket)
    assert b is not None
    for credential in admin.catalog.credentials(b.id, "form"):
        admin.catalog.revoke_credential(credential.id)
    p = policy_of(bucket, "/nosign2.bin", date=date)
    r = post(
        client,
        bucket.bucket,
        [("policy", p), ("authorization", authorization(bucket, p, date=date)), ("file", ("x", BODY))],
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert "sign" not in result and "no-sign" not in result
    old = post(
        client, bucket.bucket, [("policy", p), ("signature", signature(bucket, p)), ("file", ("x", BODY))]
    )
    assert old.status_code == 401
