"""Hostile input on the routes issue #10 added or changed, generated from a fixed seed: UPYUN
``PATCH ?metadata=``, ``X-Date``, listing a multi-part upload's parts; Wantu ``rename`` and
``blockComplete`` without ``md5``; ImageX presigned query authentication; and the HTTP layer's
new framing rules (Transfer-Encoding with Content-Length, trailers, Upgrade).

Every request is signed correctly where the route needs it, so that the garbage reaches the code
behind the signature check. The answer must be below 500, in the route's own error shape (see
``tests.test_hostile``), within the timeout, and the log must hold no traceback.
"""

from __future__ import annotations

import base64
import hmac
import json
import random
import time
from email.utils import formatdate
from urllib.parse import quote, urlencode

import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.imagex.test_hostile import presigned
from tests.protocols.upyun.rest_client import sign as upyun_sign
from tests.protocols.wantu.client import resource_id, upload_token
from tests.test_hostile import Req, check, report, send

SEED = 20261205
ROUNDS = 120

NASTY = [
    "",
    " ",
    "0",
    "-1",
    "99999999999999999999",
    "1e309",
    "NaN",
    "..",
    "%2e%2e",
    "/etc/passwd",
    "a" * 3000,
    "\u00e9\u4e2d",
    "\x00",
    "\x7f",
    '"',
    "{}",
    "[]",
    "null",
    "true",
]


def nasty(rng: random.Random) -> str:
    return (
        rng.choice(NASTY) if rng.random() < 0.7 else "".join(chr(rng.randrange(1, 0x3000)) for _ in range(8))
    )


def raw(value: str) -> bytes:
    """Header bytes: UTF-8 with CR/LF removed (a split header is the HTTP layer's business)."""
    return value.replace("\r", "").replace("\n", "").encode("utf-8")


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@pytest.fixture(scope="module")
def target(admin: Gateway, server: LiveServer) -> BucketCredentials:
    creds = create_bucket(admin.catalog, admin.secrets, "hostileroutes")
    uri = f"/{creds.bucket}/f.txt"
    reply = send(
        server, Req("PUT", uri, [(k, v.encode()) for k, v in upyun_sign(creds, "PUT", uri).items()], b"x")
    )
    assert reply.status == 200
    return creds


def signed_upyun(creds: BucketCredentials, method: str, target: str) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in upyun_sign(creds, method, target).items()]


def test_patch_metadata_and_part_listing_garbage(server: LiveServer, target: BucketCredentials) -> None:
    rng = random.Random(SEED)
    failures: list[str] = []
    b = target.bucket
    for _ in range(ROUNDS):
        key = rng.choice(["f.txt", "none.txt", "", "dir/", quote(nasty(rng)), "f.txt/x"])
        op = rng.choice(["merge", "replace", "delete", quote(nasty(rng))])
        path = f"/{b}/{key}?metadata={op}"
        headers = signed_upyun(target, "PATCH", path)
        for _ in range(rng.randrange(4)):
            name = rng.choice(["ttl", "a", "A_b-c", "", "x.y", nasty(rng)[:20]])
            clean = "".join(c for c in name if c not in "\r\n: ")
            headers.append(("x-upyun-meta-" + clean, raw(nasty(rng))))
        check(server, Req("PATCH", path, headers), failures)
        listing = f"/{b}/{rng.choice(['f.txt', 'none.txt'])}"
        headers = signed_upyun(target, "GET", listing)
        headers.append(
            (
                "X-Upyun-Multi-Uuid",
                raw(rng.choice([nasty(rng), "0" * 32, "0" * 8 + "-0000-0000-0000-" + "0" * 12])),
            )
        )
        if rng.random() < 0.5:
            headers.append(("X-Upyun-Part-Id", raw(nasty(rng))))
        check(server, Req("GET", listing, headers), failures)
        # X-Date in place of Date, with garbage beside it
        dated = f"/{b}/f.txt"
        auth = upyun_sign(target, "GET", dated, date=rng.choice([formatdate(usegmt=True), nasty(rng)]))
        headers = [("Authorization", raw(auth["Authorization"])), ("X-Date", raw(auth["Date"]))]
        if rng.random() < 0.5:
            headers.append(("Date", raw(nasty(rng))))
        check(server, Req("GET", dated, headers), failures)
    report(failures)


def _manage(creds: BucketCredentials, method: str, path: str, body: str = "") -> Req:
    date = str(int(time.time() * 1000))
    mac = hmac.new(creds.secret_access_key.encode(), f"{path}\n{body}\n{date}".encode(), "sha1")
    token = b64(f"{creds.access_key_id}:{base64.b64encode(mac.digest()).decode()}")
    headers = [("Authorization", f"ACL_TOP {token}".encode()), ("Date", date.encode())]
    if body:
        headers.append(("Content-Type", b"application/x-www-form-urlencoded"))
    return Req(method, path, headers, body.encode())


def random_rid(rng: random.Random, namespace: str) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return resource_id(
            namespace, rng.choice(["/", "/a", "/../x", nasty(rng)]), rng.choice(["f.txt", nasty(rng)])
        )
    if choice == 1:
        return b64(
            json.dumps([rng.choice([namespace, None, 1, nasty(rng)]) for _ in range(rng.randrange(5))])
        )
    if choice == 2:
        return quote(nasty(rng), safe="")
    return b64(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))).replace("=", "")


def test_wantu_rename_and_block_complete_garbage(server: LiveServer, target: BucketCredentials) -> None:
    rng = random.Random(SEED + 1)
    failures: list[str] = []
    ns = target.bucket
    for i in range(ROUNDS):
        source = resource_id(ns, "/", "f.txt") if rng.random() < 0.5 else random_rid(rng, ns)
        path = f"/3.0/files/{source}/rename/{random_rid(rng, ns)}"
        if rng.random() < 0.2:
            path += "/" + quote(nasty(rng), safe="")
        method = rng.choice(["POST", "PUT", "GET", "DELETE"])
        # a fresh Date per request: one signature is good for one method only
        time.sleep(0.002)
        check(server, _manage(target, method, path, rng.choice(["", "a=b", nasty(rng)])), failures)
        # blockComplete without md5, over garbage parts lists and ids
        policy = {"namespace": ns, "expiration": int(time.time() * 1000) + 600_000}
        auth = "UPLOAD_AK_TOP " + upload_token(target.access_key_id, target.secret_access_key, policy)
        fields = {
            "id": rng.choice(["", nasty(rng), "00000000-0000-0000-0000-000000000000"]),
            "uploadId": rng.choice(["", nasty(rng), "0" * 32]),
            "parts": rng.choice(
                [
                    nasty(rng),
                    b64(nasty(rng)),
                    b64(json.dumps([{"partNumber": nasty(rng), "eTag": nasty(rng)}])),
                ]
            ),
        }
        body = (
            b"".join(
                b'--Z\r\nContent-Disposition: form-data; name="'
                + k.encode()
                + b'"\r\n\r\n'
                + raw(v)
                + b"\r\n"
                for k, v in fields.items()
            )
            + b"--Z--\r\n"
        )
        headers = [("Authorization", auth.encode()), ("Content-Type", b"multipart/form-data; boundary=Z")]
        check(server, Req("POST", "/api/proxy/blockComplete", headers, body), failures)
        if i % 40 == 0:
            time.sleep(0.01)
    report(failures)


def test_presigned_query_garbage(server: LiveServer, target: BucketCredentials) -> None:
    rng = random.Random(SEED + 2)
    failures: list[str] = []
    actions = ["ApplyImageUpload", "CommitImageUpload", "AssumeRole", nasty(rng)]
    for _ in range(ROUNDS):
        params = {"Action": rng.choice(actions), "Version": "2018-08-01", "ServiceId": target.bucket}
        if rng.random() < 0.3:
            params[rng.choice(["X-Expires", "Overwrite", "StoreKeys", "FileSize", "UploadNum"])] = nasty(rng)
        query: list[tuple[str, str]] = list(presigned(target, params, method=rng.choice(["GET", "POST"])))
        for _ in range(rng.randrange(3)):
            roll = rng.randrange(3)
            if roll == 0 and query:  # change a value
                i = rng.randrange(len(query))
                query[i] = (query[i][0], nasty(rng))
            elif roll == 1 and query:  # drop one
                query.pop(rng.randrange(len(query)))
            else:  # add or repeat one
                name = rng.choice([k for k, _ in query] or ["X-Signature"])
                query.append((name, nasty(rng)))
        method = rng.choice(["GET", "POST"])
        body = rng.choice([b"", b'{"SessionKey": "x"}', raw(nasty(rng))]) if method == "POST" else b""
        check(server, Req(method, "/?" + urlencode(query, quote_via=quote), [], body), failures)
    report(failures)


def test_framing_the_http_layer_now_serves(server: LiveServer, target: BucketCredentials) -> None:
    """Transfer-Encoding with Content-Length, trailers and Upgrade, on routes of every dialect."""
    rng = random.Random(SEED + 3)
    failures: list[str] = []
    b = target.bucket
    routes = [
        ("PUT", f"/{b}/t.bin"),
        ("POST", f"/{b}"),
        ("POST", "/api/proxy/upload"),
        ("POST", "/3.0/folders/" + resource_id(b, "/t")),
        ("POST", "/"),
        ("PUT", f"/tos-cn-i-{b}/t.bin"),
        ("GET", "/healthz"),
        ("GET", "/livez"),
        ("GET", f"/{b}/f.txt!/fw/8"),
    ]
    for _ in range(ROUNDS):
        method, path = rng.choice(routes)
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        headers: list[tuple[str, bytes]] = []
        if method in ("PUT", "POST") and path.startswith(f"/{b}/"):
            headers += signed_upyun(target, method, path)
        body = (b"%x\r\n" % len(data) + data + b"\r\n" if data else b"") + b"0\r\n"
        body += (
            b"".join(b"X-T%d: %s\r\n" % (i, raw(nasty(rng))[:100]) for i in range(rng.randrange(3))) + b"\r\n"
        )
        headers.append(("Transfer-Encoding", b"chunked"))
        if rng.random() < 0.5:
            headers.append(("Content-Length", rng.choice([b"0", b"5", str(len(body)).encode()])))
        if rng.random() < 0.3:
            headers += [("Connection", b"Upgrade"), ("Upgrade", rng.choice([b"h2c", b"websocket", b"foo"]))]
        check(server, Req(method, path, headers, body), failures)
    report(failures)


def test_zz_no_traceback(server: LiveServer) -> None:
    log = server.log()
    assert "Traceback" not in log, log[-5000:]
