"""Upload tokens: short-lived, limited permissions to upload that an app's backend hands to a
browser or a phone, so the client never holds an API key.

A token is issued by an API key with the ``write`` scope for one bucket, and says: how long
(``ttl``), how many uploads (``max_uses``), where (a key ``prefix``, or one fixed ``key``), how big
(``max_size``), what (``content_types``, patterns like ``image/*``) and whether its uploads may
replace an existing object (``overwrite``, off by default: a browser holding a prefix token must
not replace other people's objects; off, the commit is insert-only, so of two racing uploads of
one key exactly one is stored and the other is 409 ``key_exists``). It is checked before any
byte of the body is read (:func:`check_upload_token`), and its limits travel on in the
:class:`~mediagate.core.grant.UploadGrant` so that a client lying about its size or type is still
refused while streaming and after sniffing.

A use is spent by one conditional UPDATE in the catalog (``uses < max_uses`` in its WHERE), so two
nodes racing for the last use cannot both win; a failed upload gives its use back
(:func:`release_upload_token`). The secret (``mgt_<id>_<random>``) is shown once; only its SHA-256
is stored. Revoking the issuing key, or the token, stops it at once on every node.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mediagate.catalog import Cap, Catalog
from mediagate.catalog.models import ApiKey as ApiKeyRow
from mediagate.catalog.models import UploadToken as UploadTokenRow
from mediagate.core import values, webhooks
from mediagate.core.apikeys import WRITE, ApiKey, hash_secret, require
from mediagate.core.checks import mime_matches
from mediagate.core.errors import (
    BadRequest,
    Forbidden,
    InvalidKey,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from mediagate.core.grant import UploadGrant
from mediagate.core.keys import normalise_key
from mediagate.logs import note_caller

_SECRET = re.compile(r"^mgt_([0-9a-f]{16})_([0-9a-f]{48})$")
_MIME_PATTERN = re.compile(r"^(\*|\*/\*|[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$")

MAX_TTL = 86_400
MAX_USES = 10_000
MAX_SIZE = 2**63 - 1
"""The largest ``max_size`` the catalog holds (a signed 64-bit column)."""
DEFAULT_TTL = 900
UNDECLARED = "application/octet-stream"


@dataclass(frozen=True)
class UploadToken:
    """A token as listed: never its secret."""

    token_id: str
    bucket: str
    key_id: str
    """The public id of the API key that issued it."""
    prefix: str
    fixed_key: str | None
    max_size: int | None
    content_types: tuple[str, ...]
    max_uses: int
    uses: int
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None
    notify_url: str | None = None
    """Where its uploads are announced (core.webhooks); None: the bucket's webhook."""
    overwrite: bool = False
    """Whether its uploads may replace an existing object."""


@dataclass(frozen=True)
class TokenGrant:
    """What a checked token allows this upload: one resolved key, a size and types."""

    token_id: str
    bucket: str
    key: str
    max_size: int | None
    content_types: tuple[str, ...]
    expires_at: datetime
    uses_left: int
    consumed: bool
    notify_url: str | None = None
    overwrite: bool = False

    def upload_grant(self) -> UploadGrant:
        """The core's grant for this upload: the size caps the stream, the types the sniffed
        file; without ``overwrite`` the commit is insert-only (an existing key is ``key_exists``)."""
        return UploadGrant.for_key(
            self.bucket,
            self.key,
            max_size=self.max_size,
            allowed_mime=self.content_types or None,
            insert_only=not self.overwrite,
        )


def _view(row: UploadTokenRow, key: ApiKeyRow, bucket: str) -> UploadToken:
    return UploadToken(
        token_id=row.id,
        bucket=bucket,
        key_id=key.key_id,
        prefix=row.prefix,
        fixed_key=row.fixed_key,
        max_size=row.max_size,
        content_types=tuple(row.content_types or ()),
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        notify_url=row.notify_url,
        overwrite=row.overwrite,
    )


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_token_request")


def _prefix(raw: str) -> str:
    """A key prefix: no leading '/', no control characters, no '.'/'..' segment (so every key it
    admits is a valid key); may end with '/' or part of a name ('u1-')."""
    stripped = raw.lstrip("/")
    if not stripped:
        return ""
    try:
        # normalised as keys are ('a//' is 'a/'): a prefix no normalised key starts with would
        # make a token that can never upload
        return normalise_key(stripped + "x")[:-1]
    except InvalidKey as exc:
        raise _bad(f"invalid prefix: {exc.message}") from exc


def issue_upload_token(
    catalog: Catalog,
    issuer: ApiKey,
    bucket: str,
    *,
    ttl: int = DEFAULT_TTL,
    max_uses: int = 1,
    prefix: str = "",
    key: str | None = None,
    max_size: int | None = None,
    content_types: Sequence[str] = (),
    notify_url: str | None = None,
    overwrite: bool = False,
    max_per_bucket: int | None = None,
) -> tuple[UploadToken, str]:
    """A new token for ``bucket`` and its secret (print it once). Needs ``write`` on the bucket.
    ``notify_url`` must have passed ``webhooks.check_url`` (an async check: the caller's); the
    bucket must have a webhook secret to sign with. ``max_per_bucket`` (the
    ``max_upload_tokens_per_bucket`` setting): a bucket with that many live tokens (not expired,
    revoked or used up) gets no more until some lapse (LimitExceeded)."""
    require(issuer, WRITE, bucket)
    if not 1 <= ttl <= MAX_TTL:
        raise _bad(f"ttl must be between 1 and {MAX_TTL} seconds")
    if not 1 <= max_uses <= MAX_USES:
        raise _bad(f"max_uses must be between 1 and {MAX_USES}")
    if max_size is not None and not 0 <= max_size <= MAX_SIZE:
        raise _bad(f"max_size must be between 0 and {MAX_SIZE}")
    types = tuple(dict.fromkeys(t.strip().lower() for t in content_types))
    bad_type = next((t for t in types if not _MIME_PATTERN.match(t)), None)
    if bad_type is not None:
        raise _bad(f"{bad_type!r} is not a content type or pattern like 'image/*'")
    if len(types) > 50:
        raise _bad("at most 50 content types")
    fixed = None
    if key is not None:
        try:
            fixed = normalise_key(key)
        except InvalidKey as exc:
            raise _bad(f"invalid key: {exc.message}") from exc
    start = _prefix(prefix)
    if fixed is not None and not fixed.startswith(start):
        raise _bad("the fixed key is not under the prefix")
    found = catalog.api_key(issuer.key_id)
    if found is None or found[0].revoked_at is not None:
        raise Unauthorized("the API key is not valid (unknown, malformed or revoked)", code="invalid_api_key")
    target = catalog.require_bucket(bucket)
    if notify_url is not None:
        webhooks.require_secret(catalog, values.Bucket.of(target))
    public, random = secrets.token_hex(8), secrets.token_hex(24)
    secret = f"mgt_{public}_{random}"
    now = datetime.now(UTC)
    row = catalog.add_upload_token(
        UploadTokenRow(
            id=f"ut_{public}",
            bucket_id=target.id,
            api_key_id=found[0].id,
            secret_hash=hash_secret(secret),
            prefix=start,
            fixed_key=fixed,
            max_size=max_size,
            content_types=list(types),
            max_uses=max_uses,
            uses=0,
            expires_at=now + timedelta(seconds=ttl),
            created_at=now,
            notify_url=notify_url,
            overwrite=overwrite,
        ),
        cap=None if max_per_bucket is None else Cap(max_per_bucket, _too_many_tokens(bucket, max_per_bucket)),
    )
    return _view(row, found[0], bucket), secret


def _too_many_tokens(bucket: str, limit: int) -> LimitExceeded:
    return LimitExceeded(
        f"bucket {bucket!r} already has {limit} live upload tokens, the most the server allows one "
        "bucket (max_upload_tokens_per_bucket): wait for some to expire or be used, or revoke some"
    )


def is_upload_token(secret: str) -> bool:
    """Whether a bearer secret is shaped like an upload token (not an API key)."""
    return secret.startswith("mgt_")


def _resolve_key(token: UploadTokenRow, key: str | None, filename: str | None) -> str:
    if token.fixed_key is not None:
        if key is not None and normalise_key(key) != token.fixed_key:
            raise Forbidden(f"this token only uploads to {token.fixed_key!r}", code="key_outside_prefix")
        return token.fixed_key
    if key is None:
        name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not name:
            raise BadRequest("give the object's key (or a filename)", code="key_required")
        key = token.prefix + name
    resolved = normalise_key(key)
    if not resolved.startswith(token.prefix):
        raise Forbidden(f"this token only uploads under {token.prefix!r}", code="key_outside_prefix")
    return resolved


def verify_upload_token(catalog: Catalog, token: str, *, bucket: str) -> UploadToken:
    """Whether ``token`` could upload to ``bucket`` now, without spending a use or naming a key:
    the check a multipart upload makes from its headers, before its form is read (the full
    :func:`check_upload_token` follows once the file part names the file)."""
    refused = Unauthorized(
        "the upload token is not valid (unknown, malformed or revoked)", code="invalid_upload_token"
    )
    match = _SECRET.match(token)
    found = catalog.upload_token(f"ut_{match.group(1)}") if match is not None else None
    if found is None or not hmac.compare_digest(found[0].secret_hash, hash_secret(token)):
        raise refused
    row, issuer, token_bucket = found
    if row.revoked_at is not None or issuer.revoked_at is not None:
        raise refused
    if token_bucket != bucket:
        raise Forbidden("this upload token belongs to another bucket", code="token_bucket_mismatch")
    if row.expires_at <= datetime.now(UTC):
        raise Forbidden("the upload token has expired", code="token_expired")
    if row.uses >= row.max_uses:
        raise Forbidden("the upload token has no uses left", code="token_used_up")
    return _view(row, issuer, token_bucket)


def check_upload_token(
    catalog: Catalog,
    token: str,
    *,
    bucket: str,
    key: str | None = None,
    filename: str | None = None,
    size: int | None = None,
    content_type: str | None = None,
    consume: bool = True,
) -> TokenGrant:
    """The grant of ``token`` for this upload, checked before any byte is read (see the module
    docstring and CONTRACT-v1 for the order of refusals); with ``consume`` one use is spent."""
    refused = Unauthorized(
        "the upload token is not valid (unknown, malformed or revoked)", code="invalid_upload_token"
    )
    match = _SECRET.match(token)
    if match is None:
        raise refused
    found = catalog.upload_token(f"ut_{match.group(1)}")
    if found is None:
        hmac.compare_digest(hash_secret(token), hash_secret(""))
        raise refused
    row, issuer, token_bucket = found
    if not hmac.compare_digest(row.secret_hash, hash_secret(token)):
        raise refused
    if row.revoked_at is not None or issuer.revoked_at is not None:
        raise refused
    if token_bucket != bucket:
        raise Forbidden("this upload token belongs to another bucket", code="token_bucket_mismatch")
    note_caller("token", row.id)  # per-token and per-key upload rate limits (core.quotas)
    note_caller("key", issuer.key_id)
    now = datetime.now(UTC)
    if consume and row.expires_at <= now:
        raise Forbidden("the upload token has expired", code="token_expired")
    resolved = _resolve_key(row, key, filename)
    if size is not None and row.max_size is not None and size > row.max_size:
        raise PayloadTooLarge(
            f"the upload ({size} bytes) exceeds the token's max_size of {row.max_size} bytes",
            code="token_max_size",
        )
    types = tuple(row.content_types or ())
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    declared = bool(mime) and mime != UNDECLARED  # octet-stream says "unknown": sniffing decides
    if types and declared and not any(mime_matches(pattern, mime) for pattern in types):
        raise Forbidden(
            f"this token does not allow {mime!r} (allowed: {', '.join(types)})",
            code="content_type_not_allowed",
        )
    left = row.max_uses - row.uses
    if consume:
        spent = catalog.consume_upload_token(row.id, now)
        if spent is None:
            fresh = catalog.upload_token(row.id)
            if fresh is not None and (fresh[0].revoked_at is not None or fresh[1].revoked_at is not None):
                raise refused
            if fresh is not None and fresh[0].expires_at <= now:
                raise Forbidden("the upload token has expired", code="token_expired")
            raise Forbidden("the upload token has no uses left", code="token_used_up")
        left = spent
    return TokenGrant(
        token_id=row.id,
        bucket=bucket,
        key=resolved,
        max_size=row.max_size,
        content_types=types,
        expires_at=row.expires_at,
        uses_left=left,
        consumed=consume,
        notify_url=row.notify_url,
        overwrite=row.overwrite,
    )


def release_upload_token(catalog: Catalog, grant: TokenGrant) -> None:
    """Give back the use a failed upload spent, so that it leaves no trace."""
    if grant.consumed:
        catalog.release_upload_token(grant.token_id)


def list_upload_tokens(catalog: Catalog, bucket: str) -> list[UploadToken]:
    target = catalog.require_bucket(bucket)
    return [_view(row, key, bucket) for row, key in catalog.list_upload_tokens(target.id)]


def revoke_upload_token(catalog: Catalog, bucket: str, token_id: str) -> UploadToken:
    target = catalog.require_bucket(bucket)
    if not catalog.revoke_upload_token(target.id, token_id):
        raise NotFound(f"bucket {bucket!r} has no active upload token {token_id!r}", code="token_not_found")
    found = catalog.upload_token(token_id)
    if found is None:  # the bucket was deleted meanwhile
        raise NotFound(f"bucket {bucket!r} has no upload token {token_id!r}", code="token_not_found")
    return _view(found[0], found[1], found[2])
