"""Wantu single upload (/api/proxy/upload) against a live server, driven by the seed-only client:
the seed's request shape, then one test per policy field."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.wantu.client import WantuClient, md5
from tests.protocols.wantu.conftest import Receiver, jpeg_with_exif, png


def test_seed_request_shape(wantu: WantuClient, server: LiveServer) -> None:
    data = png()
    before = int(time.time() * 1000)
    r = wantu.upload(
        data,
        fields={"md5": md5(data), "size": str(len(data)), "dir": "/dir", "name": "name"},
        filename="jpgTest.jpg",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dir"] == "/dir" and body["name"] == "name"
    assert body["fileSize"] == len(data) and body["mimeType"] == "image/png"
    assert body["eTag"] == body["ETag"] == md5(data)
    assert body["url"] == f"{server.url}/{wantu.namespace}/dir/name"
    assert before - 1000 <= body["fileModified"] <= int(time.time() * 1000) + 1000
    assert body["requestId"]
    assert "returnBody" not in body and "customBody" not in body
    # the same values as headers (the seed prints the answer as header lines)
    assert r.headers["dir"] == "/dir" and r.headers["name"] == "name" and r.headers["url"] == body["url"]
    assert r.headers["fileSize"] == str(len(data)) and r.headers["requestId"] == body["requestId"]
    assert httpx.get(body["url"]).content == data


def test_post_is_accepted_too(wantu: WantuClient) -> None:
    r = wantu.upload(b"hello", fields={"name": "a.txt"}, method="POST")
    assert r.status_code == 200, r.text
    assert r.json()["dir"] == "/" and r.json()["url"].endswith(f"/{wantu.namespace}/a.txt")


def test_parts_after_content_are_ignored(wantu: WantuClient) -> None:
    body, ctype = (b"", "")
    from tests.protocols.wantu.client import multipart

    body, ctype = multipart([("name", "first.txt")], b"file bytes")
    trailer = body.replace(b"--\r\n", b"\r\n").rsplit(b"\r\n", 1)[0]
    boundary = ctype.split("boundary=")[1]
    body = (
        trailer
        + f'\r\nContent-Disposition: form-data; name="name"\r\n\r\nsecond.txt\r\n--{boundary}--\r\n'.encode()
    )
    r = wantu.http.put(
        "/api/proxy/upload",
        content=body,
        headers={"Content-Type": ctype, "Authorization": wantu.authorization()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "first.txt"


def test_policy_dir_and_name_win_over_form_fields(wantu: WantuClient) -> None:
    auth_policy = wantu.policy(dir="/fixed", name="chosen.bin")
    r = wantu.upload(b"x", policy=auth_policy, fields={"dir": "/other", "name": "ignored.bin"})
    assert r.status_code == 200, r.text
    assert (r.json()["dir"], r.json()["name"]) == ("/fixed", "chosen.bin")


def test_form_dir_without_leading_slash_and_root_default(wantu: WantuClient) -> None:
    r = wantu.upload(b"x", fields={"dir": "a/b", "name": "n"})
    assert r.status_code == 200 and r.json()["dir"] == "/a/b"
    r = wantu.upload(b"x", fields={"name": "root-file"})
    assert r.status_code == 200 and r.json()["dir"] == "/"


def test_size_limit(wantu: WantuClient) -> None:
    ok = wantu.upload(b"1234", policy=wantu.policy(sizeLimit=4), fields={"name": "ok"})
    assert ok.status_code == 200, ok.text
    over = wantu.upload(b"12345", policy=wantu.policy(sizeLimit=4), fields={"name": "over"})
    assert over.status_code == 400 and over.json()["code"] == "InvalidArgument"
    assert httpx.get(ok.json()["url"].replace("/ok", "/over")).status_code == 404


def test_mime_limit(wantu: WantuClient) -> None:
    policy = wantu.policy(mimeLimit="image/jpeg;image/png")
    assert wantu.upload(png(), policy=policy, fields={"name": "p.png"}).status_code == 200
    refused = wantu.upload(b"plain text", policy=policy, fields={"name": "t.txt"})
    assert refused.status_code == 400 and refused.json()["code"] == "InvalidArgument"
    wild = wantu.policy(mimeLimit="image/*")
    assert wantu.upload(jpeg_with_exif(), policy=wild, fields={"name": "j.jpg"}).status_code == 200


def test_insert_only(wantu: WantuClient) -> None:
    first = wantu.upload(b"one", policy=wantu.policy(insertOnly=1), fields={"name": "k"})
    assert first.status_code == 200
    again = wantu.upload(b"two", policy=wantu.policy(insertOnly=1), fields={"name": "k"})
    assert again.status_code == 400 and again.json()["code"] == "NameDuplicated"
    assert httpx.get(first.json()["url"]).content == b"one"
    overwrite = wantu.upload(b"three", policy=wantu.policy(insertOnly=0), fields={"name": "k"})
    assert overwrite.status_code == 200
    assert httpx.get(first.json()["url"]).content == b"three"


def test_detect_mime(wantu: WantuClient) -> None:
    sniffed = wantu.upload(png(), fields={"name": "a"}, content_type="text/plain")
    assert sniffed.json()["mimeType"] == "image/png"
    declared = wantu.upload(
        png(), policy=wantu.policy(detectMime=0), fields={"name": "b"}, content_type="text/plain"
    )
    assert declared.json()["mimeType"] == "text/plain"
    guessed = wantu.upload(png(), policy=wantu.policy(detectMime=0), fields={"name": "c.gif"})
    assert guessed.json()["mimeType"] == "image/gif"


def test_return_body(wantu: WantuClient) -> None:
    template = '{"dir":"${dir}","name":"$(name)","size":$( filesize),"w":${width},"h":${height}}'
    r = wantu.upload(
        png(40, 30), policy=wantu.policy(returnBody=template), fields={"dir": "/d", "name": "p.png"}
    )
    assert r.status_code == 200
    assert r.json()["returnBody"] == f'{{"dir":"/d","name":"p.png","size":{len(png(40, 30))},"w":40,"h":30}}'


def test_return_url_redirects_303(wantu: WantuClient) -> None:
    policy = wantu.policy(returnUrl="http://example.com/done?x=1", returnBody="n=${name}")
    r = wantu.upload(b"data", policy=policy, fields={"name": "r.txt"})
    assert r.status_code == 303
    location = urlsplit(r.headers["location"])
    assert (location.netloc, location.path) == ("example.com", "/done")
    query = parse_qs(location.query)
    assert query["x"] == ["1"] and query["name"] == ["r.txt"] and query["returnBody"] == ["n=r.txt"]
    assert query["eTag"] == [md5(b"data")] and query["url"][0].endswith("/r.txt")


def test_callback(wantu: WantuClient, receiver: Receiver) -> None:
    receiver.reply = b'{"answer":"from the customer"}'
    policy = wantu.policy(
        callbackUrl=receiver.url,
        callbackHost="customer.example",
        callbackBody="name=${name}&size=${fileSize}&kind=${mediaType}",
        callbackBodyType="text/plain",
    )
    r = wantu.upload(png(), policy=policy, fields={"name": "c.png"})
    assert r.status_code == 200, r.text
    assert r.json()["customBody"] == '{"answer":"from the customer"}'
    (call,) = receiver.calls
    assert call.body == f"name=c.png&size={len(png())}&kind=image".encode()
    assert call.headers["content-type"] == "text/plain" and call.headers["host"] == "customer.example"


def test_callback_default_body_type_and_fields(wantu: WantuClient, receiver: Receiver) -> None:
    r = wantu.upload(b"abc", policy=wantu.policy(callbackUrl=receiver.url), fields={"name": "d.txt"})
    assert r.status_code == 200
    (call,) = receiver.calls
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(call.body.decode())["name"] == ["d.txt"]


def test_callback_without_answer_keeps_the_file(wantu: WantuClient, server: LiveServer) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/cb"
    r = wantu.upload(b"kept", policy=wantu.policy(callbackUrl=dead), fields={"name": "kept.txt"})
    assert r.status_code == 200 and r.json()["customBody"] == ""
    assert httpx.get(r.json()["url"]).content == b"kept"


@pytest.mark.parametrize("reading", ["never (-1)", "never (0)", "seconds", "milliseconds"])
def test_expiration_readings(wantu: WantuClient, reading: str) -> None:
    # The moment is taken when the test runs, not when it is collected (a long run outlived it).
    expiration = {
        "never (-1)": -1,
        "never (0)": 0,
        "seconds": int(time.time()) + 600,
        "milliseconds": int(time.time() * 1000) + 600_000,
    }[reading]
    policy = {"namespace": wantu.namespace, "expiration": expiration}
    assert wantu.upload(b"x", policy=policy, fields={"name": "e"}).status_code == 200


def test_integer_fields_as_strings_and_empty_namespace(wantu: WantuClient) -> None:
    policy = {"namespace": "", "expiration": "-1", "insertOnly": "1", "sizeLimit": "10"}
    assert wantu.upload(b"x", policy=policy, fields={"name": "s"}).status_code == 200
    assert wantu.upload(b"x", policy=policy, fields={"name": "s"}).json()["code"] == "NameDuplicated"


def test_meta_fields_are_stored(wantu: WantuClient, admin: Gateway, bucket: BucketCredentials) -> None:
    r = wantu.upload(b"m", fields={"name": "meta.txt", "meta-owner": "alice", "var-tmp": "x"})
    assert r.status_code == 200
    obj = admin.catalog.get_object(admin.catalog.require_bucket(bucket.bucket).id, "meta.txt")
    assert obj is not None and obj.meta == {"owner": "alice"}
