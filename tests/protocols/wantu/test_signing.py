"""Wantu signing, unit level: the seed's example token, the spec's self-made vectors, resourceIds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mediagate.core.errors import BadRequest, Unauthorized
from mediagate.protocols.wantu import signing
from mediagate.protocols.wantu.policy import WantuPolicy

SEED_HEADER = (
    "UPLOAD_AK_TOP YXBwX2tleTpleUprWlhSbFkzUk5hVzFsSWpveExDSmxlSEJwY21GMGFXOXVJam90TVN3aWFXNXpaWEowVDI1c2VT"
    "STZNU3dpYm1GdFpYTndZV05sSWpvaWJtRnRaWE53WVdObElpd2ljMmw2WlV4cGJXbDBJam93ZlE6MTg0ZWViMWQxNjczYjc2MWRjODdh"
    "YjdlYjNkYmE3ZTI4OTBjZjAxNg"
)


def test_seed_example_token_decodes_to_the_seed_policy() -> None:
    token = signing.parse_upload_token(signing.split_authorization(SEED_HEADER, signing.UPLOAD_TYPES))
    assert token.access_key == "app_key"
    assert token.encoded_policy == (
        "eyJkZXRlY3RNaW1lIjoxLCJleHBpcmF0aW9uIjotMSwiaW5zZXJ0T25seSI6MSwibmFtZXNwYWNlIjoibmFtZXNwYWNlIiwic2l6ZUxpbWl0IjowfQ"
    )
    assert token.signature == "184eeb1d1673b761dc87ab7eb3dba7e2890cf016"
    assert token.policy() == {
        "detectMime": 1,
        "expiration": -1,
        "insertOnly": 1,
        "namespace": "namespace",
        "sizeLimit": 0,
    }
    policy = WantuPolicy.parse(token.policy())
    assert policy.expiration_ms is None and policy.insert_only and policy.detect_mime
    assert policy.size_limit is None and policy.namespace == "namespace"


def test_prose_spelling_of_the_token_type_is_accepted() -> None:
    bare = SEED_HEADER.split(" ", 1)[1]
    assert signing.split_authorization(f"UPLOADAKTOP {bare}", signing.UPLOAD_TYPES) == bare


def test_self_made_upload_vector() -> None:
    policy = {"namespace": "demo", "expiration": 1451491200000, "insertOnly": 0}
    assert signing.encode_policy(policy) == (
        "eyJuYW1lc3BhY2UiOiJkZW1vIiwiZXhwaXJhdGlvbiI6MTQ1MTQ5MTIwMDAwMCwiaW5zZXJ0T25seSI6MH0"
    )
    token = signing.upload_token("testak", "testsk", policy)
    assert token == (
        "dGVzdGFrOmV5SnVZVzFsYzNCaFkyVWlPaUprWlcxdklpd2laWGh3YVhKaGRHbHZiaUk2TVRRMU1UUTVNVEl3TURBd01Dd2lhVzV6WlhKMFQy"
        "NXNlU0k2TUgwOjM4MzVlYTU5Yzc3ZWM0MDQ1MGFlZTFjNjNhMWE0NGIyMWRkMDY3NTA"
    )
    parsed = signing.parse_upload_token(token)
    assert signing.upload_signature_ok(parsed, "testsk")
    assert not signing.upload_signature_ok(parsed, "other")


@pytest.mark.parametrize(
    ("string", "header"),
    [
        (
            "/3.0/files/WyJkZW1vIiwiL3Bob3RvcyIsImEuanBnIl0\n\n1426605685813",
            "dGVzdGFrOjU3MWQwZWFiZGI3ZWJiNWQ2ZDA4NzMxNDNkY2E3NzA2MDYwYWE5OWE",
        ),
        (
            "/3.0/files?namespace=demo&dir=/photos&currentPage=1&pageSize=10"
            "\n\nTue, 17 Mar 2015 14:41:25 GMT",
            "dGVzdGFrOjJiNmQ0MDE2YzcyYTZjMDgwNjQwMTgyMmZlMjk1MzYwOTBmM2VkNGE",
        ),
    ],
)
def test_self_made_manage_vectors(string: str, header: str) -> None:
    assert signing.manage_token("testak", "testsk", string) == header
    target, _, date = string.partition("\n\n")
    token = signing.parse_manage_token(header)
    assert signing.manage_signature_ok(token, "testsk", signing.manage_strings(target, "", date))


def test_manage_strings_cover_every_formulation() -> None:
    strings = signing.manage_strings("/3.0/files/abc", "", "D")
    assert "/3.0/files/abc\n\nD" in strings
    assert "3.0/files/abc\n\nD" in strings  # the seed's worked example drops the leading '/'
    assert "/3.0/files/abc?\n\nD" in strings  # the template's bare '?'
    assert "uri=/3.0/files/abc\ndate=D" in strings  # the header section's formula


def test_resource_ids() -> None:
    seed = signing.parse_resource_id("WyJxaW5uaW5nMiIsIi9tbHRlc3QiLCJwb3JuMCJd", file=True)
    assert (seed.namespace, seed.dir, seed.name) == ("qinning2", "/mltest", "porn0")
    assert signing.resource_id("demo", "/photos", "a.jpg") == "WyJkZW1vIiwiL3Bob3RvcyIsImEuanBnIl0"
    spaced = signing.b64encode(json.dumps(["", "/", "x"]))  # non-compact JSON is fine
    assert signing.parse_resource_id(spaced, file=True).name == "x"
    with pytest.raises(BadRequest):
        signing.parse_resource_id("WyJkZW1vIiwiL3Bob3RvcyIsImEuanBnIl0", file=False)
    for bad_dir in ("photos", "/a/", "/a//b", "/" + "x" * 192, "/a/../b"):
        with pytest.raises(BadRequest):
            signing.parse_resource_id(signing.resource_id("d", bad_dir), file=False)
    for bad_name in ("", "a/b", "x" * 65):
        with pytest.raises(BadRequest):
            signing.parse_resource_id(signing.resource_id("d", "/", bad_name), file=True)


def test_date_window_and_formats() -> None:
    now = datetime(2015, 3, 17, 14, 41, 25, tzinfo=UTC)
    window = 15 * 60
    signing.check_date("Tue, 17 Mar 2015 14:41:25 GMT", now, skew_seconds=window)
    signing.check_date(str(int(now.timestamp() * 1000)), now, skew_seconds=window)
    signing.check_date(str(int(now.timestamp())), now + timedelta(minutes=14), skew_seconds=window)
    with pytest.raises(Unauthorized):
        signing.check_date("Tue, 17 Mar 2015 14:41:25 GMT", now + timedelta(minutes=16), skew_seconds=window)
    with pytest.raises(Unauthorized):
        signing.check_date("yesterday", now, skew_seconds=window)
    with pytest.raises(Unauthorized):
        signing.check_date(None, now, skew_seconds=window)


def test_the_window_is_the_one_given() -> None:
    """The server's date_skew_seconds decides, not a hard-coded 15 minutes."""
    now = datetime(2015, 3, 17, 14, 41, 25, tzinfo=UTC)
    signing.check_date("Tue, 17 Mar 2015 14:41:25 GMT", now + timedelta(minutes=25), skew_seconds=1800)
    with pytest.raises(Unauthorized, match="2 minutes"):
        signing.check_date("Tue, 17 Mar 2015 14:41:25 GMT", now + timedelta(minutes=3), skew_seconds=120)


@pytest.mark.parametrize("date", ["9999999999999999", "9999999999", "253402300800000"])
def test_a_date_past_year_9999_is_a_401_not_a_crash(date: str) -> None:
    with pytest.raises(Unauthorized):
        signing.check_date(date, datetime.now(UTC), skew_seconds=900)


def test_expiration_units() -> None:
    assert WantuPolicy.parse({"expiration": 1451491200}).expiration_ms == 1451491200000
    assert WantuPolicy.parse({"expiration": 1451491200000}).expiration_ms == 1451491200000
    assert WantuPolicy.parse({"expiration": "-1"}).expiration_ms is None
    assert WantuPolicy.parse({}).expiration_ms is None
    with pytest.raises(BadRequest):
        WantuPolicy.parse({"expiration": "soon"})
