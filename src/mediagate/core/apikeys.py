"""Keys for mediagate's own ``/v1`` API: who may call it, on which bucket, with which scopes.

A key is bound to one bucket, or server-wide (``bucket`` None: it reaches every bucket, and with
the ``admin`` scope may create buckets). The secret (``mgk_<id>_<random>``) is shown once; the
catalog keeps its SHA-256 only, which is enough for a 192-bit random secret (no dictionary to
guess from) and compared in constant time. The public ``key_id`` is part of the secret, so a
lookup is one indexed read, not a scan of hashes. Keys are never cached: a revocation holds on
every node at the next request, and takes the upload tokens the key issued with it.

These are not the dialects' bucket credentials (``mediagate bucket key …``, core.credentials).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from mediagate.catalog import Cap, Catalog
from mediagate.catalog.models import ApiKey as ApiKeyRow
from mediagate.core.errors import BadRequest, Conflict, Forbidden, LimitExceeded, NotFound, Unauthorized
from mediagate.logs import note_caller

READ, WRITE, ADMIN = "read", "write", "admin"
SCOPES = (READ, WRITE, ADMIN)

_SECRET = re.compile(r"^mgk_([0-9a-f]{16})_([0-9a-f]{48})$")


@dataclass(frozen=True)
class ApiKey:
    """A key as the API and the CLI see it: never its secret."""

    key_id: str
    bucket: str | None
    scopes: frozenset[str]
    label: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def is_server_admin(self) -> bool:
        return self.bucket is None and ADMIN in self.scopes

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def can(self, scope: str, bucket: str | None) -> bool:
        """Whether the key holds ``scope`` on ``bucket`` (None: a server-wide action)."""
        return scope in self.scopes and (self.bucket is None or self.bucket == bucket)

    def sorted_scopes(self) -> list[str]:
        return [s for s in SCOPES if s in self.scopes]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes named (comma lists accepted), or BadRequest ``invalid_scope``."""
    found = {s.strip().lower() for item in scopes for s in item.split(",") if s.strip()}
    unknown = sorted(found - set(SCOPES))
    if unknown:
        raise BadRequest(f"unknown scope {unknown[0]!r}; scopes are read, write, admin", code="invalid_scope")
    if not found:
        raise BadRequest("a key needs at least one scope: read, write or admin", code="invalid_scope")
    return frozenset(found)


def _view(row: ApiKeyRow, bucket: str | None) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        bucket=bucket,
        scopes=frozenset(s for s in row.scopes.split(",") if s),
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_key(
    catalog: Catalog,
    *,
    bucket: str | None,
    scopes: Iterable[str],
    label: str = "",
    max_per_bucket: int | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret (print it once; only its hash is stored). ``max_per_bucket``
    (the ``max_api_keys_per_bucket`` setting): a bucket with that many active keys gets no more
    (LimitExceeded), so that a tenant's admin key cannot fill the catalog with keys."""
    wanted = parse_scopes(scopes)
    if len(label) > 200:
        raise BadRequest("a key label is at most 200 characters", code="invalid_label")
    bucket_id = catalog.require_bucket(bucket).id if bucket is not None else None
    public, random = secrets.token_hex(8), secrets.token_hex(24)
    secret = f"mgk_{public}_{random}"
    row = catalog.add_api_key(
        ApiKeyRow(
            key_id=f"mk_{public}",
            bucket_id=bucket_id,
            scopes=",".join(s for s in SCOPES if s in wanted),
            label=label,
            secret_hash=hash_secret(secret),
            created_at=datetime.now(UTC),
        ),
        cap=None if max_per_bucket is None else Cap(max_per_bucket, _too_many_keys(bucket, max_per_bucket)),
    )
    return _view(row, bucket), secret


def _too_many_keys(bucket: str | None, limit: int) -> LimitExceeded:
    return LimitExceeded(
        f"bucket {bucket!r} already has {limit} active API keys, the most the server allows one bucket "
        "(max_api_keys_per_bucket): revoke one first"
    )


def list_keys(catalog: Catalog, *, bucket: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
    """Keys, newest first; only ``bucket``'s when given (NotFound for an unknown bucket)."""
    bucket_id = catalog.require_bucket(bucket).id if bucket is not None else None
    keys = [_view(row, name) for row, name in catalog.list_api_keys(bucket_id=bucket_id)]
    return [k for k in keys if include_revoked or k.active]


def get_key(catalog: Catalog, key_id: str) -> ApiKey:
    found = catalog.api_key(key_id)
    if found is None:
        raise NotFound(f"there is no API key {key_id!r}", code="key_not_found")
    return _view(*found)


def revoke_key(catalog: Catalog, key_id: str) -> ApiKey:
    """Revoke a key now, and with it every upload token it issued."""
    get_key(catalog, key_id)  # NotFound first
    if not catalog.revoke_api_key(key_id):
        raise Conflict(f"API key {key_id} is already revoked", code="already_revoked")
    return get_key(catalog, key_id)


def authenticate_key(catalog: Catalog, secret: str) -> ApiKey:
    """The active key whose secret this is, or Unauthorized ``invalid_api_key``."""
    refused = Unauthorized("the API key is not valid (unknown, malformed or revoked)", code="invalid_api_key")
    match = _SECRET.match(secret)
    if match is None:
        raise refused
    found = catalog.api_key(f"mk_{match.group(1)}")
    if found is None:
        hmac.compare_digest(hash_secret(secret), hash_secret(""))  # the same work either way
        raise refused
    row, bucket = found
    if not hmac.compare_digest(row.secret_hash, hash_secret(secret)) or row.revoked_at is not None:
        raise refused
    note_caller("key", row.key_id)  # its per-key upload rate limit (core.quotas)
    return _view(row, bucket)


def require(key: ApiKey, scope: str, bucket: str | None = None) -> None:
    """Refuse unless ``key`` holds ``scope`` on ``bucket`` (None: a server-wide action)."""
    if key.bucket is not None and key.bucket != bucket:
        if bucket is None:
            message = f"this key belongs to bucket {key.bucket!r}; this needs a server-wide key"
        else:
            message = f"this key belongs to bucket {key.bucket!r} and cannot reach bucket {bucket!r}"
        raise Forbidden(message, code="bucket_forbidden")
    if scope not in key.scopes:
        raise Forbidden(f"this key lacks the {scope!r} scope", code="insufficient_scope")
