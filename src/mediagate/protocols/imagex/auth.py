"""Authenticating an OpenAPI request (``/?Action=``), signed either way (see ``sigv4``).

Order, cheapest first and revealing nothing: parse the Authorization header; check the signing
date against the clock (bounded skew) and the scope's day; check a declared body hash against the
body; find the secret (a bucket's long-term AK/SK, or a temporary AKTP key whose STS2 session
token is vouched for by a still-active long-term key and, if minted from a web session, by a
session that is not revoked); compare the signature in constant time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from mediagate.catalog.models import Bucket
from mediagate.core.buckets import AKSK
from mediagate.core.errors import BadRequest, Expired, Forbidden, Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.protocols.imagex import sigv4
from mediagate.protocols.imagex.tokens import Scope, open_sts2, parse_sts2, scope_from_policy

MAX_SKEW_SECONDS = 15 * 60
SESSION_KIND = "imagex-session"
"""Credential kind of the Dreamina-style web ``sessionid`` (revocable, see ``sts``)."""


@dataclass(frozen=True)
class Principal:
    """Who signed a request: the bucket, the key, and (temporary keys) what it may do."""

    bucket: Bucket
    access_key_id: str
    temporary: bool
    scope: Scope
    expires_at: int | None = None
    """Unix time the temporary credentials expire (None for a long-term key): whatever is minted
    on their behalf (upload Auth, SessionKey) must not outlive them."""


def _unauthorized(code: str, message: str) -> Unauthorized:
    return Unauthorized(message, code=code)


async def authenticate(request: Request, body: bytes) -> Principal:
    gw: Gateway = request.app.state.gateway
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized(
            "MissingAuthenticationToken", "the request is not signed (no Authorization header)"
        )
    try:
        auth = sigv4.parse_authorization(header)
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    headers = {k.lower(): v for k, v in request.headers.items()}
    if auth.date_header not in auth.signed_headers:
        raise _unauthorized("InvalidAuthorization", f"the {auth.date_header} header must be signed")
    try:
        signed_at = sigv4.parse_date(headers.get(auth.date_header, ""))
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    if signed_at.strftime("%Y%m%d") != auth.day:
        raise _unauthorized("InvalidAuthorization", "the Credential scope date is not the signing date")
    skew = abs((datetime.now(UTC) - signed_at).total_seconds())
    if skew > MAX_SKEW_SECONDS:
        raise Expired(
            f"the request was signed {int(skew)} s away from the server's clock "
            f"(at most {MAX_SKEW_SECONDS} s allowed)",
            code="RequestExpired",
        )
    body_hash = hashlib.sha256(body).hexdigest()
    declared = headers.get(auth.hash_header)
    if declared is not None and declared.strip().lower() != body_hash:
        raise BadRequest(f"{auth.hash_header} does not match the request body", code="InvalidParameter")

    token = headers.get(auth.token_header)
    if token:
        if auth.token_header not in auth.signed_headers:
            raise _unauthorized("InvalidAuthorization", f"the {auth.token_header} header must be signed")
        bucket, secret, scope, expires_at = await _temporary(gw, auth.access_key_id, token.strip())
        temporary = True
    else:
        if auth.access_key_id.startswith("AKTP"):
            raise _unauthorized("InvalidSecurityToken", "temporary credentials need their session token")
        found = await gw.find_key(AKSK, auth.access_key_id)
        if found is None:
            raise _unauthorized("InvalidAccessKey", "the access key id is not known or was rotated")
        bucket, secret = found
        scope = Scope()
        temporary = False
        expires_at = None
    try:
        candidates = sigv4.expected_signatures(
            auth,
            secret=secret,
            method=request.method,
            path=request.url.path,
            query=request.query_params.multi_items(),
            headers=headers,
            body_sha256=body_hash,
        )
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    if not sigv4.matches(auth, candidates):
        raise Forbidden(
            "the request signature does not match (check the secret, the signed headers and the query)",
            code="SignatureDoesNotMatch",
        )
    return Principal(
        bucket=bucket,
        access_key_id=auth.access_key_id,
        temporary=temporary,
        scope=scope,
        expires_at=expires_at,
    )


async def _temporary(gw: Gateway, access_key_id: str, token: str) -> tuple[Bucket, str, Scope, int]:
    """(bucket, temporary secret, scope, expiry) of a valid STS2 session token."""
    inner = parse_sts2(token)
    if inner is None or inner.access_key_id != access_key_id:
        raise _unauthorized(
            "InvalidSecurityToken", "the session token is malformed or not for this access key"
        )
    found = await gw.find_key(AKSK, inner.lt_access_key_id)
    if found is None:
        raise _unauthorized(
            "InvalidSecurityToken", "the key that issued these temporary credentials is no longer active"
        )
    bucket, lt_secret = found
    secret = open_sts2(inner, lt_secret)
    if secret is None:
        raise _unauthorized("InvalidSecurityToken", "the session token's signature is invalid")
    if inner.expired_time <= time.time():
        raise Expired("the temporary credentials have expired", code="ExpiredSecurityToken")
    try:
        scope = scope_from_policy(inner.policy_string)
    except ValueError as exc:
        raise _unauthorized("InvalidSecurityToken", str(exc)) from None
    if scope.session_id is not None and await gw.find_key(SESSION_KIND, scope.session_id) is None:
        raise _unauthorized("InvalidSecurityToken", "the session these credentials came from was revoked")
    return bucket, secret, scope, inner.expired_time


def require(principal: Principal, action: str, service_id: str) -> None:
    """The principal may run ``action`` on ServiceId ``service_id``."""
    if service_id != principal.bucket.name:
        raise Forbidden("the ServiceId is not the bucket of these credentials", code="AccessDenied")
    if not principal.scope.allows_action(action) or not principal.scope.allows_service(service_id):
        raise Forbidden(f"these temporary credentials may not call {action}", code="AccessDenied")
