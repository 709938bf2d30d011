"""Per-bucket limits (``max_api_keys_per_bucket``, ``max_upload_tokens_per_bucket``,
``max_tus_sessions_per_bucket``): one tenant cannot fill the catalog with keys, tokens or open
uploads. At the limit, one more is 409 ``limit_exceeded`` in the /v1 (and tus) error shape, which
says what to do; it frees up as keys are revoked, tokens lapse, uploads finish or are terminated.
Another bucket is not affected."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.protocols.native import api
from tests.protocols.tus.conftest import auth, create, meta, patch

ENV = {
    "MEDIAGATE_MAX_API_KEYS_PER_BUCKET": "3",
    "MEDIAGATE_MAX_UPLOAD_TOKENS_PER_BUCKET": "3",
    "MEDIAGATE_MAX_TUS_SESSIONS_PER_BUCKET": "2",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Gateway]]:
    home = make_home(Path(tmp_path_factory.mktemp("limited")))
    live = LiveServer(home.home, env=ENV).start()
    gw = build_gateway(home, migrate=False)
    yield live, gw
    gw.catalog.close()
    live.stop()
    assert "Traceback" not in live.log(), live.log()[-5000:]


def new_bucket(gw: Gateway) -> BucketCredentials:
    return create_bucket(gw.catalog, gw.secrets, f"l{uuid.uuid4().hex[:12]}")


def test_api_keys_per_bucket(limited: tuple[LiveServer, Gateway]) -> None:
    server, gw = limited
    mine, other = new_bucket(gw), new_bucket(gw)
    with api.client(server.url, api.new_key(gw, None)) as operator:  # server-wide keys do not count
        made = [operator.post("/v1/keys", json={"bucket": mine.bucket, "scopes": ["read"]}) for _ in range(3)]
        assert [r.status_code for r in made] == [201, 201, 201], made[-1].text
        refused = operator.post("/v1/keys", json={"bucket": mine.bucket, "scopes": ["read"]})
        assert api.error_of(refused) == (409, "limit_exceeded")
        assert "3 active API keys" in refused.json()["error"]["message"]
        assert "revoke" in refused.json()["error"]["message"]
        # another bucket has its own allowance; a revoked key frees a place
        assert operator.post("/v1/keys", json={"bucket": other.bucket, "scopes": ["read"]}).status_code == 201
        assert operator.delete(f"/v1/keys/{made[0].json()['key_id']}").status_code == 200
        assert operator.post("/v1/keys", json={"bucket": mine.bucket, "scopes": ["read"]}).status_code == 201
        assert (
            api.error_of(operator.post("/v1/keys", json={"bucket": mine.bucket, "scopes": ["read"]}))[0]
            == 409
        )
    # a bucket's own admin key (made in the catalog, beyond the API) meets the same limit
    with api.client(server.url, api.new_key(gw, mine.bucket)) as tenant:
        refused = tenant.post("/v1/keys", json={"bucket": mine.bucket, "scopes": ["read"]})
        assert api.error_of(refused) == (409, "limit_exceeded")
    assert (
        len(
            [
                k
                for k in gw.catalog.list_api_keys(bucket_id=gw.catalog.require_bucket(mine.bucket).id)
                if k[0].revoked_at is None
            ]
        )
        == 4
    )


def test_live_upload_tokens_per_bucket(limited: tuple[LiveServer, Gateway]) -> None:
    server, gw = limited
    mine = new_bucket(gw)
    with api.client(server.url, api.new_key(gw, mine.bucket, "write")) as issuer:
        target = f"/v1/buckets/{mine.bucket}/upload-tokens"
        short = issuer.post(target, json={"ttl": 1})
        once = issuer.post(target, json={"max_uses": 1, "key": "once.txt"})
        kept = issuer.post(target, json={"max_uses": 5})
        assert [r.status_code for r in (short, once, kept)] == [201, 201, 201]
        refused = issuer.post(target, json={})
        assert api.error_of(refused) == (409, "limit_exceeded")
        assert "max_upload_tokens_per_bucket" in refused.json()["error"]["message"]
        # a used-up token and an expired one no longer count
        with api.client(server.url, once.json()["token"]) as browser:
            put = browser.put(f"/v1/buckets/{mine.bucket}/objects/once.txt", content=b"x")
            assert put.status_code == 201, put.text
        assert issuer.post(target, json={}).status_code == 201
        time.sleep(1.1)
        assert issuer.post(target, json={}).status_code == 201
        assert api.error_of(issuer.post(target, json={})) == (409, "limit_exceeded")
    # revoking the key that issued them ends its tokens, and frees their places
    with api.client(server.url, api.new_key(gw, None)) as operator:
        key_id = operator.get("/v1/keys", params={"bucket": mine.bucket}).json()["keys"][0]["key_id"]
        assert operator.delete(f"/v1/keys/{key_id}").status_code == 200
        fresh = operator.post(target, json={"max_uses": 1})
        assert fresh.status_code == 201, fresh.text


def test_open_tus_uploads_per_bucket(limited: tuple[LiveServer, Gateway]) -> None:
    server, gw = limited
    mine, other = new_bucket(gw), new_bucket(gw)
    with api.client(server.url, api.new_key(gw, mine.bucket, "write")) as issuer:
        token = issuer.post(f"/v1/buckets/{mine.bucket}/upload-tokens", json={"max_uses": 10}).json()["token"]
    with api.client(server.url, api.new_key(gw, other.bucket, "write")) as issuer:
        theirs = issuer.post(f"/v1/buckets/{other.bucket}/upload-tokens", json={"max_uses": 10}).json()[
            "token"
        ]

    def start(bucket: str, secret: str, name: str) -> httpx.Response:
        return create(server.url, bucket, secret, 4, **{"Upload-Metadata": meta(filename=name)})

    first, second = start(mine.bucket, token, "a"), start(mine.bucket, token, "b")
    assert first.status_code == second.status_code == 201, first.text
    refused = start(mine.bucket, token, "c")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "limit_exceeded" and refused.headers["tus-resumable"] == "1.0.0"
    assert start(other.bucket, theirs, "c").status_code == 201  # another bucket is not affected
    # finishing one upload, or terminating one, frees a place
    assert patch(first.headers["Location"], token, 0, b"done").status_code == 204
    assert start(mine.bucket, token, "d").status_code == 201
    assert start(mine.bucket, token, "e").status_code == 409
    assert httpx.delete(second.headers["Location"], headers=auth(token)).status_code == 204
    assert start(mine.bucket, token, "f").status_code == 201
    # the refused creations took no use of the token: four created, one terminated (given back)
    row = gw.catalog.upload_token("ut_" + token.split("_")[1])
    assert row is not None and row[0].uses == 3
