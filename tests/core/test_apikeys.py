"""API keys for /v1 (core.apikeys): a secret shown once and stored as a hash, scopes, bucket
binding, revocation. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mediagate.catalog import Catalog
from mediagate.catalog.models import ApiKey as ApiKeyRow
from mediagate.core.apikeys import authenticate_key, create_key, get_key, list_keys, require, revoke_key
from mediagate.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized


def test_a_key_authenticates_by_its_secret_and_only_a_hash_is_stored(catalog: Catalog) -> None:
    catalog.create_bucket("photos")
    key, secret = create_key(catalog, bucket="photos", scopes=["read,write"], label="app backend")
    assert secret.startswith("mgk_") and len(secret) > 60
    assert key.key_id.startswith("mk_") and key.key_id[3:] in secret
    assert authenticate_key(catalog, secret) == key
    assert key.bucket == "photos" and key.scopes == {"read", "write"} and key.label == "app backend"
    with catalog.engine.connect() as conn:
        stored = conn.execute(select(ApiKeyRow.secret_hash)).scalar_one()
    assert secret not in stored and secret.split("_")[2] not in stored


@pytest.mark.parametrize(
    "guess",
    ["", "Bearer", "mgk_", "mgk_0123456789abcdef_" + "0" * 48, "mgt_0123456789abcdef_" + "0" * 48],
)
def test_malformed_or_unknown_secrets_are_refused(catalog: Catalog, guess: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        authenticate_key(catalog, guess)
    assert refused.value.code == "invalid_api_key"


def test_a_right_key_id_with_a_wrong_secret_is_refused(catalog: Catalog) -> None:
    _, secret = create_key(catalog, bucket=None, scopes=["admin"])
    forged = secret[:-4] + ("0000" if not secret.endswith("0000") else "1111")
    with pytest.raises(Unauthorized):
        authenticate_key(catalog, forged)


def test_a_revoked_key_is_refused_at_once(catalog: Catalog) -> None:
    key, secret = create_key(catalog, bucket=None, scopes=["read"])
    gone = revoke_key(catalog, key.key_id)
    assert gone.revoked_at is not None
    with pytest.raises(Unauthorized):
        authenticate_key(catalog, secret)
    with pytest.raises(Conflict) as again:
        revoke_key(catalog, key.key_id)
    assert again.value.code == "already_revoked"
    assert get_key(catalog, key.key_id).revoked_at is not None


def test_scopes_and_buckets_are_enforced(catalog: Catalog) -> None:
    catalog.create_bucket("alpha")
    reader, _ = create_key(catalog, bucket="alpha", scopes=["read"])
    require(reader, "read", "alpha")
    with pytest.raises(Forbidden) as scope:
        require(reader, "write", "alpha")
    assert scope.value.code == "insufficient_scope"
    with pytest.raises(Forbidden) as other:
        require(reader, "read", "beta")
    assert other.value.code == "bucket_forbidden"
    with pytest.raises(Forbidden) as server_wide:
        require(reader, "read", None)
    assert server_wide.value.code == "bucket_forbidden"
    root, _ = create_key(catalog, bucket=None, scopes=["read", "write", "admin"])
    assert root.is_server_admin
    require(root, "admin", None)
    require(root, "write", "beta")


def test_bad_scopes_and_unknown_buckets(catalog: Catalog) -> None:
    with pytest.raises(BadRequest) as bad:
        create_key(catalog, bucket=None, scopes=["read,delete"])
    assert bad.value.code == "invalid_scope"
    with pytest.raises(BadRequest):
        create_key(catalog, bucket=None, scopes=[""])
    with pytest.raises(NotFound) as missing:
        create_key(catalog, bucket="nope", scopes=["read"])
    assert missing.value.code == "bucket_not_found"
    with pytest.raises(NotFound):
        revoke_key(catalog, "mk_0000000000000000")


def test_listing_by_bucket_and_deleting_a_bucket_takes_its_keys(catalog: Catalog) -> None:
    catalog.create_bucket("alpha")
    catalog.create_bucket("beta")
    a, _ = create_key(catalog, bucket="alpha", scopes=["read"])
    b, secret_b = create_key(catalog, bucket="beta", scopes=["read"])
    root, _ = create_key(catalog, bucket=None, scopes=["admin"])
    assert [k.key_id for k in list_keys(catalog)] == [root.key_id, b.key_id, a.key_id]
    assert [k.key_id for k in list_keys(catalog, bucket="beta")] == [b.key_id]
    catalog.delete_bucket("beta")
    with pytest.raises(Unauthorized):
        authenticate_key(catalog, secret_b)
    assert [k.key_id for k in list_keys(catalog)] == [root.key_id, a.key_id]
