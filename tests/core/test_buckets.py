"""Buckets: names the routing table can serve, and credentials kept sealed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mediagate.core.buckets import AKSK, FORM, UPYUN, create_bucket, validate_bucket_name
from mediagate.core.errors import BadRequest, Conflict
from mediagate.services import build_gateway
from tests.conftest import make_home


@pytest.mark.parametrize("name", ["demo", "my-photos", "a1b", "x" * 63])
def test_valid_names(name: str) -> None:
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "ab",
        "Demo",
        "-abc",
        "abc-",
        "a_b",
        "a.b",
        "x" * 64,
        "api",
        "upload",
        "mweb",
        "v1",
        "healthz",
        "docs",
        "tos-cn-i-abc",
        "ui",
        "static",
        "metrics",
        "a/b",
        "a b",
    ],
)
def test_names_the_routing_table_cannot_serve_are_refused(name: str) -> None:
    with pytest.raises(BadRequest):
        validate_bucket_name(name)


def test_credentials_are_generated_and_sealed_at_rest(tmp_path: Path) -> None:
    settings = make_home(tmp_path)
    gw = build_gateway(settings)
    try:
        creds = create_bucket(gw.catalog, gw.secrets, "demo", password="pw-plain-123")
        assert creds.operator == "demo-op"
        assert creds.password == "pw-plain-123"
        assert creds.access_key_id.startswith("AK")
        assert len(creds.form_api_secret) >= 20 and len(creds.secret_access_key) >= 30
        bucket = gw.catalog.require_bucket("demo")
        (upyun,) = gw.catalog.credentials(bucket.id, UPYUN)
        assert upyun.key_id == "demo-op"
        assert gw.secrets.open(upyun.sealed_secret) == hashlib.md5(b"pw-plain-123").hexdigest()
        assert (
            gw.secrets.open(gw.catalog.credentials(bucket.id, FORM)[0].sealed_secret) == creds.form_api_secret
        )
        found = gw.catalog.find_credential(AKSK, creds.access_key_id)
        assert found is not None and found[1].name == "demo"
    finally:
        gw.catalog.close()
    # a stolen catalog (the SQLite file and its WAL) reveals no secret and no md5(password)
    stolen = b"".join(p.read_bytes() for p in tmp_path.glob("catalog.sqlite3*"))
    for secret_value in (
        creds.password,
        creds.form_api_secret,
        creds.secret_access_key,
        hashlib.md5(b"pw-plain-123").hexdigest(),
    ):
        assert secret_value.encode() not in stolen
    assert creds.access_key_id.encode() in stolen  # public ids are not secret


def test_bucket_names_and_access_keys_are_unique(tmp_path: Path) -> None:
    gw = build_gateway(make_home(tmp_path))
    try:
        create_bucket(gw.catalog, gw.secrets, "one", access_key_id="AKSAME")
        with pytest.raises(Conflict):
            create_bucket(gw.catalog, gw.secrets, "one")
        with pytest.raises(Conflict) as taken:
            create_bucket(gw.catalog, gw.secrets, "two", access_key_id="AKSAME")
        assert taken.value.code == "access_key_exists"
        assert [b.name for b in gw.catalog.list_buckets()] == ["one"]
    finally:
        gw.catalog.close()
