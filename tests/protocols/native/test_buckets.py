"""/v1 buckets and usage against a live server: a server-wide admin key creates buckets (and gets
their dialect credentials once), a bucket key sees only its own bucket, settings are validated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.native.api import client, error_of, new_key
from tests.protocols.upyun.forms import upload


@pytest.fixture
def root(server: LiveServer, admin: Gateway) -> Iterator[httpx.Client]:
    with client(server.url, new_key(admin, None)) as c:
        yield c


def fresh() -> str:
    return f"v{uuid.uuid4().hex[:12]}"


def test_create_a_bucket_and_use_its_dialect_credentials(root: httpx.Client, admin: Gateway) -> None:
    name = fresh()
    r = root.post("/v1/buckets", json={"name": name, "settings": {"public": False}})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == name and made["settings"] == {"public": False}
    creds = BucketCredentials(bucket=name, **made["credentials"])
    assert upload(root, creds, b"via upyun", key="/u.txt").status_code == 200  # the FORM API works
    assert error_of(root.post("/v1/buckets", json={"name": name})) == (409, "bucket_exists")
    assert error_of(root.post("/v1/buckets", json={"name": "docs"}))[0] == 400  # reserved by routing
    assert error_of(root.post("/v1/buckets", json={"name": "Bad_Name"})) == (400, "invalid_request")
    assert name in [b["name"] for b in root.get("/v1/buckets").json()["buckets"]]
    assert root.get(f"/v1/buckets/{name}").json()["settings"] == {"public": False}


def test_settings_are_validated_and_merged(root: httpx.Client, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    r = root.patch(
        f"/v1/buckets/{b}",
        json={"settings": {"cors_origins": ["HTTPS://App.Example.com"], "versions": {"small": "fw/100"}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {
        "cors_origins": ["https://app.example.com"],
        "versions": {"small": "/fw/100"},
    }
    r = root.patch(f"/v1/buckets/{b}", json={"settings": {"public": False, "cors_origins": None}})
    assert r.json()["settings"] == {"cors_origins": None, "versions": {"small": "/fw/100"}, "public": False}
    for bad in (
        {"cors_origins": ["not an origin"]},
        {"versions": {"-x": "/fw/1"}},
        {"cors_max_age": -1},
        {"unknown": 1},
        {"normalise": {"format": "bmp"}},
    ):
        assert error_of(root.patch(f"/v1/buckets/{b}", json={"settings": bad})) == (400, "invalid_request"), (
            bad
        )
    private = httpx.get(f"{root.base_url}/{b}/x")
    assert private.status_code in (403, 404)


def test_delete_needs_force_when_not_empty(root: httpx.Client, admin: Gateway) -> None:
    name = fresh()
    root.post("/v1/buckets", json={"name": name})
    assert root.put(f"/v1/buckets/{name}/objects/a.txt", content=b"a").status_code == 201
    usage = root.get(f"/v1/buckets/{name}/usage").json()
    assert usage == {"bucket": name, "bytes": 1, "objects": 1}
    assert {"bucket": name, "bytes": 1, "objects": 1} in root.get("/v1/usage").json()["buckets"]
    assert error_of(root.delete(f"/v1/buckets/{name}")) == (409, "bucket_not_empty")
    assert root.delete(f"/v1/buckets/{name}", params={"force": "true"}).status_code == 204
    assert error_of(root.get(f"/v1/buckets/{name}")) == (404, "bucket_not_found")
    assert admin.catalog.get_bucket(name) is None


def test_a_bucket_key_sees_only_its_bucket(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    from mediagate.core.buckets import create_bucket

    other = create_bucket(admin.catalog, admin.secrets, fresh()).bucket
    b = bucket.bucket
    with client(server.url, new_key(admin, b, "read,write,admin")) as own:
        assert [x["name"] for x in own.get("/v1/buckets").json()["buckets"]] == [b]
        assert [u["bucket"] for u in own.get("/v1/usage").json()["buckets"]] == [b]
        assert error_of(own.get(f"/v1/buckets/{other}")) == (403, "bucket_forbidden")
        assert error_of(own.get("/v1/buckets/no-such-bucket")) == (403, "bucket_forbidden")  # no oracle
        assert error_of(own.post("/v1/buckets", json={"name": fresh()})) == (403, "bucket_forbidden")
        assert error_of(own.delete(f"/v1/buckets/{other}", params={"force": "true"})) == (
            403,
            "bucket_forbidden",
        )
        assert own.patch(f"/v1/buckets/{b}", json={"settings": {"public": True}}).status_code == 200
    with client(server.url, new_key(admin, b, "read,write")) as writer:
        assert error_of(writer.patch(f"/v1/buckets/{b}", json={"settings": {}})) == (
            403,
            "insufficient_scope",
        )
        assert error_of(writer.delete(f"/v1/buckets/{b}")) == (403, "insufficient_scope")
    with client(server.url, new_key(admin, None, "read")) as auditor:
        assert error_of(auditor.post("/v1/buckets", json={"name": fresh()})) == (403, "insufficient_scope")
        assert other in [x["name"] for x in auditor.get("/v1/buckets").json()["buckets"]]
    assert admin.catalog.get_bucket(other) is not None
