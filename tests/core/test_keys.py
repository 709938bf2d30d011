"""Object keys (``mediagate.core.keys``): the one normal form, and everything that could escape."""

from __future__ import annotations

import time

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.errors import InvalidKey
from mediagate.core.gateway import Gateway
from mediagate.core.keys import (
    MAX_KEY_BYTES,
    existing_dir,
    existing_key,
    normalise_dir,
    normalise_key,
    parent_dirs,
    split_key,
)
from tests.conftest import LiveServer


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("a.jpg", "a.jpg"),
        ("/a.jpg", "a.jpg"),
        ("/a//b", "a/b"),
        ("//a///b//c.jpg", "a/b/c.jpg"),
        ("a b/中文 名.txt", "a b/中文 名.txt"),
        ("..a/b..", "..a/b.."),  # dots inside a name are just characters
        ("a/.hidden", "a/.hidden"),
        ("x" * MAX_KEY_BYTES, "x" * MAX_KEY_BYTES),
        ("/" + "x" * MAX_KEY_BYTES, "x" * MAX_KEY_BYTES),  # the limit applies to the normal form
    ],
)
def test_normal_form(raw: str, key: str) -> None:
    assert normalise_key(raw) == key
    assert normalise_key(key) == key  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "/",
        "///",
        "..",
        "../etc/passwd",
        "a/../../b",
        "a/..",
        ".",
        "./a",
        "a/./b",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "\x1f",
        "a\x7fb",
        "a/",  # a trailing slash names a folder
        "/a/b/",
        "x" * (MAX_KEY_BYTES + 1),
        "中" * (MAX_KEY_BYTES // 3 + 1),  # bytes, not characters
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(InvalidKey) as info:
        normalise_key(raw)
    assert info.value.status == 400
    assert info.value.code == "invalid_key"


def test_folder_paths_allow_a_trailing_slash() -> None:
    assert normalise_key("a/b/", allow_folder=True) == "a/b"
    assert normalise_key("/a//b//", allow_folder=True) == "a/b"
    for raw in ("/", "", "../", "a/../", "a\x00/"):
        with pytest.raises(InvalidKey):
            normalise_key(raw, allow_folder=True)


@pytest.mark.parametrize(("raw", "path"), [("", ""), ("/", ""), ("//", ""), ("/a/b/", "a/b"), ("a", "a")])
def test_normalise_dir(raw: str, path: str) -> None:
    assert normalise_dir(raw) == path


@pytest.mark.parametrize("raw", ["/\x00", "\n", "../", "/a/./"])
def test_normalise_dir_refuses(raw: str) -> None:
    with pytest.raises(InvalidKey):
        normalise_dir(raw)


def test_split_key_and_parent_dirs() -> None:
    assert split_key("a/b/c.jpg") == ("a/b", "c.jpg")
    assert split_key("c.jpg") == ("", "c.jpg")
    assert parent_dirs("a/b/c") == ["a", "a/b", "a/b/c"]
    assert parent_dirs("") == []


# -- invisible characters: refused the same way by every dialect ------------------------------------------

KEEP = {0x200C, 0x200D, *range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD}
"""Format characters that scripts need and that render visibly or join visible letters."""


def test_every_control_format_surrogate_and_separator_character_is_refused() -> None:
    """The whole of Unicode's Cc, Cf, Cs, Zl and Zp categories, as this Python knows them, but
    the few kept on purpose (core.keys' docstring). A newer Unicode adding one fails here first."""
    import unicodedata

    for cp in range(0x110000):
        char = chr(cp)
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") and cp not in KEEP:
            with pytest.raises(InvalidKey):
                normalise_key(f"dir/na{char}me.jpg")
            with pytest.raises(InvalidKey):
                normalise_dir(f"{char}")
        elif cp in KEEP:
            assert normalise_key(f"n{char}.jpg") == f"n{char}.jpg"


@pytest.mark.parametrize(
    "name",
    [
        "evil\u202egpj.exe",  # RIGHT-TO-LEFT OVERRIDE: shows as "evilexe.jpg"
        "a\u202ab",
        "a\u2066b\u2069",
        "\u200fx",
        "zero\u200bwidth",
        "\ufeffbom",
        "tag\U000e0041",
        "line\u2028sep",
        "c1\x85",
        "lone\ud800",
    ],
)
def test_bidi_and_invisible_characters_are_refused_with_the_code_point(name: str) -> None:
    with pytest.raises(InvalidKey) as refused:
        normalise_key(f"dir/{name}")
    assert "control" in refused.value.message


@pytest.mark.parametrize(
    "name",
    [
        "中文 名.jpg",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467.png",
        "می\u200cخواهم.txt",
        "\u0600١٢.txt",
        "Ä\u0308.txt",
    ],
)
def test_scripts_and_emoji_sequences_stay_valid(name: str) -> None:
    assert normalise_key(name) == name


def test_every_dialect_refuses_a_bidi_name_in_its_own_shape_and_stores_nothing(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """The same rule whichever way the name comes: a REST path, a FORM save-key made of the
    file's name, a Wantu ``name``, ImageX ``StoreKeys``, a /v1 path, a tus ``filename``."""
    from urllib.parse import quote

    from tests.protocols.imagex.conftest import signed as imagex_signed
    from tests.protocols.native import api
    from tests.protocols.tus.conftest import create, issue_token, meta
    from tests.protocols.upyun import forms
    from tests.protocols.upyun.rest_client import signed as upyun_signed
    from tests.protocols.wantu.client import multipart as wantu_multipart
    from tests.protocols.wantu.client import upload_token
    from tests.support import uploads

    evil = "evil\u202egpj.exe"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        rest = upyun_signed(c, bucket, "PUT", f"/{bucket.bucket}/{quote(evil)}", content=b"x")
        assert "U+202E" in uploads.assert_upyun_rest_error(rest, 400)["msg"]

        policy = forms.policy_of(bucket, "/up/{filename}{.suffix}")
        form = forms.post(
            c,
            bucket.bucket,
            [("policy", policy), ("signature", forms.signature(bucket, policy)), ("file", (evil, b"x"))],
        )
        assert "U+202E" in uploads.assert_upyun_form_error(form, 400)["message"]

        doc = {"namespace": bucket.bucket, "expiration": int(time.time() * 1000) + 600_000}
        body, ctype = wantu_multipart([("dir", "/"), ("name", evil)], b"x")
        token = upload_token(bucket.access_key_id, bucket.secret_access_key, doc)
        wantu = c.post(
            "/api/proxy/upload",
            content=body,
            headers={"Content-Type": ctype, "Authorization": f"UPLOAD_AK_TOP {token}"},
        )
        assert wantu.status_code == 400 and wantu.json()["message"], wantu.text

        params = {
            "Action": "ApplyImageUpload",
            "Version": "2018-08-01",
            "ServiceId": bucket.bucket,
            "StoreKeys": evil,
        }
        imagex = imagex_signed(server, "GET", params, ak=bucket.access_key_id, sk=bucket.secret_access_key)
        assert (
            "U+202E"
            in uploads.assert_imagex_action_error(
                imagex, 400, imagex.json()["ResponseMetadata"]["Error"]["Code"]
            )["ResponseMetadata"]["Error"]["Message"]
        )

    with api.client(server.url, api.new_key(admin, bucket.bucket, "write")) as v1:
        status, code = api.error_of(
            v1.put(f"/v1/buckets/{bucket.bucket}/objects/{quote(evil)}", content=b"x")
        )
        assert (status, code) == (400, "invalid_key")
    tus = create(
        server.url,
        bucket.bucket,
        issue_token(admin, bucket.bucket, prefix="in/"),
        1,
        **{"Upload-Metadata": meta(filename=evil)},
    )
    assert tus.status_code == 400 and "U+202E" in tus.json()["error"]["message"], tus.text
    assert admin.catalog.usage(admin.catalog.require_bucket(bucket.bucket).id) == 0


def test_a_lookup_lets_through_what_only_the_naming_rule_refuses() -> None:
    assert existing_key("/old/evil\u202egpj.exe") == "old/evil\u202egpj.exe"
    assert existing_dir("/old\u200b/") == "old\u200b"
    for raw in ("a\x00b", "a\nb", "../a", "a/\ud800"):
        with pytest.raises(InvalidKey):
            existing_key(raw)


def test_an_object_named_before_the_rule_can_still_be_read_moved_away_and_deleted(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """A key stored by an earlier version, holding a character names may no longer hold: every
    dialect still finds it by that name (nothing acknowledged becomes unreachable), while a new
    name with the character is refused."""
    from urllib.parse import quote

    from sqlalchemy import update

    from mediagate.catalog.models import Object
    from tests.protocols.native import api
    from tests.protocols.upyun.rest_client import signed as upyun_signed
    from tests.support import uploads

    old = "old/evil\u202egpj.exe"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for key in ("old/plain.bin", "old/second.bin"):
            put = upyun_signed(c, bucket, "PUT", f"/{bucket.bucket}/{key}", content=b"stored earlier")
            assert put.status_code == 200, put.text
        with admin.catalog._write() as s:  # what an earlier version stored
            s.execute(update(Object).where(Object.key == "old/plain.bin").values(key=old, name=old[4:]))
            s.execute(
                update(Object).where(Object.key == "old/second.bin").values(key=old + "2", name=old[4:] + "2")
            )
        got = upyun_signed(c, bucket, "GET", f"/{bucket.bucket}/{quote(old)}")
        assert (got.status_code, got.content) == (200, b"stored earlier")
        assert c.get(f"/{bucket.bucket}/{quote(old)}").content == b"stored earlier"  # public read
        moved = upyun_signed(
            c,
            bucket,
            "PUT",
            f"/{bucket.bucket}/old/fixed.bin",
            headers={"X-Upyun-Move-Source": f"/{bucket.bucket}/{quote(old)}"},
        )
        assert moved.status_code == 200, moved.text
        assert upyun_signed(c, bucket, "GET", f"/{bucket.bucket}/old/fixed.bin").content == b"stored earlier"
        again = upyun_signed(
            c,
            bucket,
            "PUT",
            f"/{bucket.bucket}/old/fixed.bin",
            headers={"X-Upyun-Copy-Source": f"/{bucket.bucket}/{quote(old + '2')}"},
        )
        assert again.status_code == 200, again.text
        renamed_into = upyun_signed(
            c,
            bucket,
            "PUT",
            f"/{bucket.bucket}/{quote(old + '3')}",
            headers={"X-Upyun-Copy-Source": f"/{bucket.bucket}/old/fixed.bin"},
        )
        assert "U+202E" in uploads.assert_upyun_rest_error(renamed_into, 400)["msg"]
    with api.client(server.url, api.new_key(admin, bucket.bucket)) as v1:
        where = f"/v1/buckets/{bucket.bucket}"
        content = v1.get(f"{where}/content/{quote(old + '2')}")
        assert content.content == b"stored earlier", content.text
        assert v1.delete(f"{where}/objects/{quote(old + '2')}").status_code == 204
        assert v1.get(f"{where}/objects/{quote(old + '2')}").status_code == 404
