"""/v1 keys: create, list and revoke within the caller's own rights; `GET /v1/me`."""

from __future__ import annotations

import httpx

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.native.api import client, error_of, new_key


def test_a_bucket_admin_manages_its_bucket_keys_only(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    other = create_bucket(admin.catalog, admin.secrets, f"{b}-k").bucket
    with client(server.url, new_key(admin, b, "read,admin")) as boss:
        me = boss.get("/v1/me").json()
        assert me["bucket"] == b and me["scopes"] == ["read", "admin"] and "secret" not in me
        made = boss.post("/v1/keys", json={"bucket": b, "scopes": ["read"], "label": "cdn"})
        assert made.status_code == 201, made.text
        key = made.json()
        assert key["secret"].startswith("mgk_") and key["bucket"] == b and key["label"] == "cdn"
        beyond = boss.post("/v1/keys", json={"bucket": b, "scopes": ["write"]})
        assert error_of(beyond) == (403, "insufficient_scope")
        elsewhere = boss.post("/v1/keys", json={"bucket": other, "scopes": ["read"]})
        assert error_of(elsewhere) == (403, "bucket_forbidden")
        server_wide = boss.post("/v1/keys", json={"scopes": ["read"]})
        assert error_of(server_wide) == (403, "bucket_forbidden")
        listed = boss.get("/v1/keys").json()["keys"]
        assert {k["key_id"] for k in listed} >= {key["key_id"], me["key_id"]}
        assert all(k["bucket"] == b for k in listed)
        assert error_of(boss.get("/v1/keys", params={"bucket": other})) == (403, "bucket_forbidden")

        with client(server.url, key["secret"]) as reader:
            assert reader.get(f"/v1/buckets/{b}/objects").status_code == 200
            assert error_of(reader.get("/v1/keys")) == (403, "insufficient_scope")
            revoked = boss.delete(f"/v1/keys/{key['key_id']}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
            assert error_of(reader.get(f"/v1/buckets/{b}/objects")) == (401, "invalid_api_key")
        assert error_of(boss.delete(f"/v1/keys/{key['key_id']}")) == (409, "already_revoked")

        outsider = new_key(admin, other, "read")
        outsider_id = "mk_" + outsider.split("_")[1]
        assert error_of(boss.delete(f"/v1/keys/{outsider_id}")) == (404, "key_not_found")
        assert error_of(boss.delete("/v1/keys/mk_0000000000000000")) == (404, "key_not_found")
    with client(server.url, outsider) as other_reader:
        assert other_reader.get(f"/v1/buckets/{other}").status_code == 200  # untouched


def test_a_server_admin_makes_server_wide_keys(server: LiveServer, admin: Gateway) -> None:
    with client(server.url, new_key(admin, None)) as root:
        made = root.post("/v1/keys", json={"scopes": ["read"], "bucket": None})
        assert made.status_code == 201 and made.json()["bucket"] is None
        assert error_of(root.post("/v1/keys", json={"scopes": []})) == (400, "invalid_request")
        assert error_of(root.post("/v1/keys", json={"scopes": ["root"]})) == (400, "invalid_request")
        missing = root.post("/v1/keys", json={"bucket": "no-such-bucket", "scopes": ["read"]})
        assert error_of(missing) == (404, "bucket_not_found")
        assert made.json()["key_id"] in {k["key_id"] for k in root.get("/v1/keys").json()["keys"]}


def test_an_upload_token_is_no_api_key(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> None:
    with client(server.url, new_key(admin, bucket.bucket, "write")) as writer:
        token = writer.post(f"/v1/buckets/{bucket.bucket}/upload-tokens", json={}).json()["token"]
    with client(server.url, token) as browser:
        assert error_of(browser.get("/v1/me")) == (403, "upload_token_not_allowed")
        assert error_of(browser.post("/v1/keys", json={"scopes": ["read"]})) == (
            403,
            "upload_token_not_allowed",
        )
    with httpx.Client(base_url=server.url) as c:
        basic = c.get("/v1/me", headers={"Authorization": "Basic dTpw"})
        assert error_of(basic) == (401, "missing_credentials")
