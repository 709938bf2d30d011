"""UPYUN REST API driven by the real upyun SDK 2.5.5 against a live server (spec §2-3).

Every SDK call here is the one a customer's code makes; the answers are what the SDK parses.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import upyun
from PIL import Image

from mediagate.catalog.models import Object
from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer, staging_files
from tests.protocols.upyun.rest_client import object_uri, signed

END = "g2gCZAAEbmV4dGQAA2VvZg"


@pytest.fixture
def up(server: LiveServer, bucket: BucketCredentials) -> upyun.UpYun:
    return upyun.UpYun(bucket.bucket, bucket.operator, bucket.password, endpoint=server.endpoint)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def stored(admin: Gateway, creds: BucketCredentials, key: str) -> Object | None:
    bucket = admin.catalog.require_bucket(creds.bucket)
    return admin.catalog.get_object(bucket.id, key)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


# -- put / get / getinfo ------------------------------------------------------------------------------


def test_put_bytes_with_checksum_type_and_metadata(
    up: upyun.UpYun, admin: Gateway, bucket: BucketCredentials
) -> None:
    body = b"hello, upyun"
    md5 = hashlib.md5(body).hexdigest()
    answer = up.put(
        "/docs/hello.txt",
        body,
        checksum=True,
        headers={"Content-Type": "text/x-greeting", "x-upyun-meta-owner": "alice", "X-Upyun-Meta-Tag": "v1"},
    )
    assert answer["etag"] == f'"{md5}"'
    assert answer["content-md5"] == md5
    assert answer["meta-owner"] == "alice"
    assert answer["meta-tag"] == "v1"
    assert up.get("/docs/hello.txt") == "hello, upyun"
    obj = stored(admin, bucket, "docs/hello.txt")
    assert obj is not None and obj.mime == "text/x-greeting"

    info = up.getinfo("/docs/hello.txt")
    assert info["file-type"] == "file"
    assert info["file-size"] == str(len(body))
    assert abs(int(info["file-date"]) - time.time()) < 120
    assert info["meta-owner"] == "alice"
    assert info["content-md5"] == md5


def test_put_a_file_object_and_get_it_into_a_file(up: upyun.UpYun, tmp_path: Path) -> None:
    data = os.urandom(700_000)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    with open(source, "rb") as f:
        answer = up.put("/files/in.bin", f, checksum=True)
    assert answer["content-md5"] == hashlib.md5(data).hexdigest()
    sink = io.BytesIO()
    up.get("/files/in.bin", sink)
    assert sink.getvalue() == data


def test_an_overwrite_replaces_the_bytes(up: upyun.UpYun) -> None:
    up.put("/o.txt", b"first")
    up.put("/o.txt", b"second version")
    assert up.get("/o.txt") == "second version"
    assert up.getinfo("/o.txt")["file-size"] == "14"


def test_put_of_an_image_answers_its_dimensions(up: upyun.UpYun) -> None:
    answer = up.put("/img/red.png", png(31, 17))
    assert (answer["width"], answer["height"], answer["frames"], answer["file-type"]) == (
        "31",
        "17",
        "1",
        "PNG",
    )
    info = up.getinfo("/img/red.png")
    assert (info["file-type"], info["width"], info["height"]) == ("file", "31", "17")


def test_wrong_content_md5_is_refused_and_leaves_nothing(
    up: upyun.UpYun, server_home: Settings, admin: Gateway, bucket: BucketCredentials
) -> None:
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.put("/bad.txt", b"data", headers={"Content-MD5": hashlib.md5(b"other").hexdigest()})
    assert err.value.status == 400
    assert stored(admin, bucket, "bad.txt") is None
    assert staging_files(server_home.home) == []


def test_ttl_metadata_sets_the_expiry(up: upyun.UpYun, admin: Gateway, bucket: BucketCredentials) -> None:
    up.put("/ttl.txt", b"short-lived", headers={"x-upyun-meta-ttl": "2"})
    obj = stored(admin, bucket, "ttl.txt")
    assert obj is not None and obj.expires_at is not None
    expires = obj.expires_at.replace(tzinfo=UTC).timestamp()
    assert abs(expires - (time.time() + 2 * 86400)) < 120
    assert up.getinfo("/ttl.txt")["meta-ttl"] == "2"


def test_content_secret_hides_the_plain_url(
    up: upyun.UpYun, client: httpx.Client, bucket: BucketCredentials
) -> None:
    up.put("/secret.txt", b"hidden", secret="s3cr3t")
    assert client.get(f"/{bucket.bucket}/secret.txt").status_code == 404
    assert client.get(f"/{bucket.bucket}/secret.txt!s3cr3t").content == b"hidden"
    assert up.get("/secret.txt") == "hidden"  # the owner reads it with credentials


def test_image_processing_headers_store_the_processed_image(
    up: upyun.UpYun, admin: Gateway, bucket: BucketCredentials
) -> None:
    answer = up.put("/thumb.png", png(4, 4), headers={"x-gmkerl-thumb": "/fw/2"})
    assert (answer["width"], answer["height"]) == ("2", "2")
    obj = stored(admin, bucket, "thumb.png")
    assert obj is not None and (obj.width, obj.height) == (2, 2)
    assert answer["content-md5"] == obj.md5


def test_get_and_getinfo_of_a_missing_file_are_404(up: upyun.UpYun) -> None:
    for call in (
        lambda: up.get("/none.txt"),
        lambda: up.getinfo("/none.txt"),
        lambda: up.delete("/none.txt"),
    ):
        with pytest.raises(upyun.UpYunServiceException) as err:
            call()
        assert err.value.status == 404


def test_a_wrong_password_is_401_with_a_request_id(server: LiveServer, bucket: BucketCredentials) -> None:
    bad = upyun.UpYun(bucket.bucket, bucket.operator, "not-the-password", endpoint=server.endpoint)
    with pytest.raises(upyun.UpYunServiceException) as err:
        bad.put("/x.txt", b"x")
    assert err.value.status == 401
    assert err.value.request_id not in ("", "Unknown")


# -- keys ---------------------------------------------------------------------------------------------


def test_non_ascii_and_space_keys_round_trip(
    up: upyun.UpYun, client: httpx.Client, bucket: BucketCredentials
) -> None:
    key = "/相册 2024/我的 照片 #1.txt"
    up.put(key, "中文内容".encode())
    assert up.get(key) == "中文内容"
    assert up.getinfo(key)["file-size"] == str(len("中文内容".encode()))
    assert up.getlist("/相册 2024") == [
        {"name": "我的 照片 #1.txt", "type": "N", "size": "12", "time": up.getinfo(key)["file-date"]}
    ]
    assert client.get(object_uri(bucket.bucket, key)).content == "中文内容".encode()
    up.delete(key)
    assert up.getlist("/相册 2024") == []


# -- folders and listings -------------------------------------------------------------------------------


def test_getlist_pages_in_both_orders(up: upyun.UpYun) -> None:
    for name in ("c.txt", "a.txt", "e.txt", "b.txt"):
        up.put(f"/list/{name}", name.encode())
    up.mkdir("/list/d")
    everything = up.getlist("/list")
    assert [e["name"] for e in everything] == ["a.txt", "b.txt", "c.txt", "d", "e.txt"]
    assert [(e["type"], e["size"]) for e in everything][:4] == [
        ("N", "5"),
        ("N", "5"),
        ("N", "5"),
        ("F", "0"),
    ]
    assert [e["name"] for e in up.getlist("/list/", order="desc")] == [
        "e.txt",
        "d",
        "c.txt",
        "b.txt",
        "a.txt",
    ]

    names: list[str] = []
    token = None
    for _ in range(10):
        page = up.get_list_with_iter("/list", limit=2, order="asc", begin=token)
        names += [e["name"] for e in page["files"]]
        token = page["iter"]
        if token == END:
            break
    assert names == ["a.txt", "b.txt", "c.txt", "d", "e.txt"]
    assert token == END

    first = up.get_list_with_iter("/list", limit=3, order="desc")
    rest = up.getlist("/list", limit=3, order="desc", begin=first["iter"])
    assert [e["name"] for e in first["files"] + rest] == ["e.txt", "d", "c.txt", "b.txt", "a.txt"]
    assert up.get_list_with_iter("/list", limit=2, begin=END)["files"] == []


def _page(
    client: httpx.Client, creds: BucketCredentials, folder: str, token: str | None = None, limit: int = 2
) -> httpx.Response:
    headers = {"X-List-Limit": str(limit), **({"X-List-Iter": token} if token else {})}
    return signed(client, creds, "GET", f"/{creds.bucket}/{folder}/", headers=headers)


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 40000001, r.text  # UPYUN's bad_request
    assert "X-List-Iter is not a token this server gave out for this folder" in r.json()["msg"]


def test_a_list_cursor_is_refused_anywhere_but_where_it_was_given(
    client: httpx.Client, up: upyun.UpYun, bucket: BucketCredentials, admin: Gateway
) -> None:
    """An iter token names one folder of one bucket and cannot be edited: replayed on another
    folder or bucket, altered, or made up, it is a clear 400, never another folder's names."""
    for folder in ("a", "b"):
        for name in ("1.txt", "2.txt", "3.txt", "4.txt"):
            up.put(f"/{folder}/{name}", b"x")
    token = _page(client, bucket, "a").headers["x-upyun-list-iter"]
    assert token != END
    assert _page(client, bucket, "a", token).text.split("\n")[0].startswith("3.txt")
    _refused(_page(client, bucket, "b", token))  # another folder
    other = create_bucket(admin.catalog, admin.secrets, f"b{uuid.uuid4().hex[:12]}")
    up_other = upyun.UpYun(other.bucket, other.operator, other.password, endpoint=up.endpoint)
    for name in ("1.txt", "2.txt", "3.txt"):
        up_other.put(f"/a/{name}", b"x")
    _refused(_page(client, other, "a", token))  # the same folder of another bucket
    payload, _, mac = token.partition(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b"2.txt", b"0.txt")
    forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    _refused(_page(client, bucket, "a", f"{forged}.{mac}"))  # the name edited, the mac kept
    made_up = base64.urlsafe_b64encode(b"m1:a:2.txt").decode().rstrip("=")
    _refused(_page(client, bucket, "a", made_up))  # the old unsigned shape
    _refused(_page(client, bucket, "a", token + "x"))


def test_a_list_cursor_stays_put_while_entries_are_added(
    client: httpx.Client, up: upyun.UpYun, bucket: BucketCredentials
) -> None:
    for name in ("b.txt", "d.txt", "f.txt", "h.txt"):
        up.put(f"/grow/{name}", b"x")
    first = _page(client, bucket, "grow")
    up.put("/grow/a.txt", b"x")  # before the cursor: an offset would repeat d.txt
    up.put("/grow/e.txt", b"x")  # after it: shows up in its place
    rest = _page(client, bucket, "grow", first.headers["x-upyun-list-iter"], limit=10)
    names = [line.split("\t")[0] for line in first.text.split("\n") + rest.text.split("\n")]
    assert names == ["b.txt", "d.txt", "e.txt", "f.txt", "h.txt"]
    assert rest.headers["x-upyun-list-iter"] == END


def test_listing_body_has_no_trailing_newline(
    client: httpx.Client, up: upyun.UpYun, bucket: BucketCredentials
) -> None:
    up.put("/t/x.txt", b"1")
    up.put("/t/y.txt", b"22")
    uri = f"/{bucket.bucket}/t/"
    r = signed(client, bucket, "GET", uri)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.split("\n")
    assert [line.split("\t")[:3] for line in lines] == [["x.txt", "N", "1"], ["y.txt", "N", "2"]]
    assert r.headers["x-upyun-list-iter"] == END


def test_the_root_lists_and_an_empty_folder_is_empty(up: upyun.UpYun) -> None:
    assert up.getlist("/") == []
    up.mkdir("/empty")
    up.mkdir("/nested/deeper/")
    assert [(e["name"], e["type"]) for e in up.getlist("/")] == [("empty", "F"), ("nested", "F")]
    assert up.getlist("/empty") == []
    assert up.getinfo("/nested/deeper")["file-type"] == "folder"
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.getlist("/no-such-folder/")
    assert err.value.status == 404


def test_delete_a_file_an_empty_folder_and_not_a_full_one(up: upyun.UpYun) -> None:
    up.put("/full/one.txt", b"1")
    up.mkdir("/full/sub")
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.delete("/full")
    assert err.value.status == 403
    assert "not empty" in err.value.err
    up.delete("/full/sub")
    up.delete("/full/one.txt")
    assert up.getlist("/full") == []
    up.delete("/full/")
    assert up.getlist("/") == []
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.delete("/")
    assert err.value.status == 403


def test_mkdir_where_a_file_is_is_refused(up: upyun.UpYun) -> None:
    up.put("/plain", b"file")
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.mkdir("/plain")
    assert err.value.status == 409
    assert up.get("/plain") == "file"


def test_usage_counts_the_bytes(up: upyun.UpYun) -> None:
    assert up.usage() == "0"
    up.put("/u/a.bin", b"x" * 1000)
    up.put("/u/b/c.bin", b"y" * 234)
    up.put("/other.bin", b"z" * 10)
    assert up.usage() == "1244"
    assert up.usage("/u/") == "1234"


# -- move / copy ------------------------------------------------------------------------------------------


def test_move_renames_and_copy_duplicates(up: upyun.UpYun) -> None:
    data = os.urandom(50_000)
    up.put("/src/data.bin", data)
    copied = up.copy("/src/data.bin", "/dst/copy.bin")
    assert copied["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    up.move("/src/data.bin", "/dst/moved.bin")
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.getinfo("/src/data.bin")
    assert err.value.status == 404
    up.delete("/dst/moved.bin")
    sink = io.BytesIO()
    up.get("/dst/copy.bin", sink)  # the copy owns its bytes
    assert sink.getvalue() == data
    assert [e["name"] for e in up.getlist("/dst")] == ["copy.bin"]


def test_move_and_copy_of_non_ascii_keys_with_a_quoted_source(up: upyun.UpYun) -> None:
    up.put("/源 文件.txt", "内容".encode())
    up.copy(quote("/源 文件.txt"), "/副本 文件.txt")
    up.move(quote("/源 文件.txt"), "/移动/目标.txt")
    assert up.get("/副本 文件.txt") == "内容"
    assert up.get("/移动/目标.txt") == "内容"
    assert sorted(e["name"] for e in up.getlist("/")) == sorted(["副本 文件.txt", "移动"])


def test_move_of_a_missing_source_or_another_bucket_is_refused(
    up: upyun.UpYun, bucket: BucketCredentials
) -> None:
    with pytest.raises(upyun.UpYunServiceException) as err:
        up.move("/nothing.txt", "/x.txt")
    assert err.value.status == 404
    up.put("/here.txt", b"1")
    rest = up.up_rest
    with pytest.raises(upyun.UpYunServiceException) as err:
        rest.do_http_request("PUT", "/x.txt", None, {"X-Upyun-Copy-Source": "/otherbucket/here.txt"})
    assert err.value.status == 403


def test_content_md5_in_base64_is_accepted_too(
    client: httpx.Client, up: upyun.UpYun, bucket: BucketCredentials
) -> None:
    body = b"standard base64 digest"
    digest = base64.b64encode(hashlib.md5(body).digest()).decode()
    r = signed(
        client,
        bucket,
        "PUT",
        object_uri(bucket.bucket, "b64.txt"),
        content=body,
        headers={"Content-MD5": digest},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-md5"] == hashlib.md5(body).hexdigest()
    assert up.get("/b64.txt") == body.decode()


# -- what other official clients send (node SDK: X-Date, PATCH metadata) ------------------------------


def test_x_date_signs_like_date(client: httpx.Client, bucket: BucketCredentials) -> None:
    """Browsers cannot set Date, so the node SDK signs and sends X-Date alone."""
    from email.utils import formatdate

    from tests.protocols.upyun.rest_client import sign

    uri = object_uri(bucket.bucket, "xdate.txt")
    headers = sign(bucket, "PUT", uri)
    headers["X-Date"] = headers.pop("Date")
    r = client.put(uri, content=b"signed over X-Date", headers=headers)
    assert r.status_code == 200, r.text
    stale = sign(bucket, "PUT", uri, date=formatdate(time.time() - 3600, usegmt=True))
    stale["X-Date"] = stale.pop("Date")
    r = client.put(uri, content=b"late", headers=stale)
    assert r.status_code == 401 and "minutes away" in r.json()["msg"]
    # with both headers, each must be current and the signature may cover either
    both = sign(bucket, "GET", uri)
    r = client.get(uri, headers={**both, "X-Date": formatdate(time.time() - 5, usegmt=True)})
    assert r.status_code == 200 and r.content == b"signed over X-Date"
    r = client.get(uri, headers={**both, "X-Date": formatdate(time.time() - 3600, usegmt=True)})
    assert r.status_code == 401
    r = client.get(uri, headers={"Authorization": both["Authorization"]})
    assert r.status_code == 401 and "X-Date" in r.json()["msg"]


def test_an_unknown_bucket_is_401_like_a_wrong_operator(server: LiveServer) -> None:
    """As UPYUN answers the SDK's own test_auth_failed; bucket names cannot be probed."""
    stranger = upyun.UpYun("nosuchservice", "username", "password", endpoint=server.endpoint)
    with pytest.raises(upyun.UpYunServiceException) as err:
        stranger.getinfo("/")
    assert err.value.status == 401


def test_put_move_and_copy_answer_the_content_length(up: upyun.UpYun) -> None:
    assert up.put("/len.txt", "four")["content-length"] == "4"
    assert up.copy("/len.txt", "/len-copy.txt")["content-length"] == "4"
    assert up.move("/len-copy.txt", "/len-moved.txt")["content-length"] == "4"


def patch_meta(
    client: httpx.Client, creds: BucketCredentials, key: str, operation: str, meta: dict[str, str]
) -> httpx.Response:
    uri = object_uri(creds.bucket, key) + f"?metadata={operation}"
    return signed(client, creds, "PATCH", uri, headers={f"x-upyun-meta-{k}": v for k, v in meta.items()})


def test_patch_metadata_merge_replace_delete(
    client: httpx.Client, up: upyun.UpYun, admin: Gateway, bucket: BucketCredentials
) -> None:
    up.put("/meta.txt", b"m", headers={"x-upyun-meta-owner": "alice", "x-upyun-meta-tag": "a"})

    def meta() -> dict[str, str]:
        info = up.getinfo("/meta.txt")
        return {k[len("meta-") :]: v for k, v in info.items() if k.startswith("meta-")}

    r = patch_meta(client, bucket, "meta.txt", "merge", {"tag": "b", "colour": "red"})
    assert (r.status_code, r.content) == (200, b"")
    assert meta() == {"owner": "alice", "tag": "b", "colour": "red"}
    assert patch_meta(client, bucket, "meta.txt", "delete", {"tag": "", "owner": "x"}).status_code == 200
    assert meta() == {"colour": "red"}
    assert patch_meta(client, bucket, "meta.txt", "replace", {"size": "large"}).status_code == 200
    assert meta() == {"size": "large"}
    r = client.get(f"/{bucket.bucket}/meta.txt", headers=signed_headers(bucket, "GET", "meta.txt"))
    assert r.headers["x-upyun-meta-size"] == "large" and r.content == b"m"
    assert up.get("/meta.txt") == "m"  # the bytes are untouched


def signed_headers(creds: BucketCredentials, method: str, key: str) -> dict[str, str]:
    from tests.protocols.upyun.rest_client import sign

    return sign(creds, method, object_uri(creds.bucket, key))


def test_patch_metadata_ttl_sets_and_clears_the_expiry(
    client: httpx.Client, up: upyun.UpYun, admin: Gateway, bucket: BucketCredentials
) -> None:
    up.put("/ttl.txt", b"t")
    before = time.time()
    assert patch_meta(client, bucket, "ttl.txt", "merge", {"ttl": "2"}).status_code == 200
    obj = stored(admin, bucket, "ttl.txt")
    assert obj is not None and obj.expires_at is not None
    expires = obj.expires_at.replace(tzinfo=obj.expires_at.tzinfo or UTC).timestamp()
    assert before + 2 * 86400 - 5 <= expires <= time.time() + 2 * 86400 + 5
    assert obj.meta == {"ttl": "2"}
    assert patch_meta(client, bucket, "ttl.txt", "delete", {"ttl": ""}).status_code == 200
    obj = stored(admin, bucket, "ttl.txt")
    assert obj is not None and obj.expires_at is None and obj.meta == {}
