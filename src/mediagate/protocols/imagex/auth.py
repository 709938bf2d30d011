"""Authenticating an OpenAPI request (``/?Action=``), signed either way (see ``sigv4``).

Order, cheapest first and revealing nothing: parse the Authorization header (or, without one, the
presigned query: ``X-Credential``, ``X-Date``, ``X-Expires``, ``X-SignedQueries``,
``X-Signature`` as ``get_upload_auth_token`` makes them); check the signing date against the
clock (the ``date_skew_seconds`` setting; a presigned URL lives ``X-Expires`` seconds from its
date) and the scope's day; check a declared body hash against the body; find the secret (a
bucket's long-term AK/SK, or a temporary AKTP key whose STS2 session token is vouched for by a
still-active long-term key and, if minted from a web session, by a session that is not revoked);
compare the signature in constant time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from mediagate.core.buckets import AKSK
from mediagate.core.errors import BadRequest, Expired, Forbidden, Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.core.values import Bucket
from mediagate.protocols.imagex.tokens import Scope, open_sts2, parse_sts2, scope_from_policy
from mediagate.signing import sigv4

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
    """The principal of a signed OpenAPI request: an ``Authorization`` header, else a presigned
    query (``X-Signature``, see :func:`_presigned`)."""
    gw: Gateway = request.app.state.gateway
    header = request.headers.get("authorization")
    query = request.query_params.multi_items()
    if not header and sigv4.is_presigned(query):
        return await _presigned(request, gw, query)
    if not header:
        raise _unauthorized(
            "MissingAuthenticationToken",
            "the request is not signed (no Authorization header and no X-Signature query)",
        )
    try:
        auth = sigv4.parse_authorization(header)
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    headers = {k.lower(): v for k, v in request.headers.items()}
    if auth.date_header not in auth.signed_headers:
        raise _unauthorized("InvalidAuthorization", f"the {auth.date_header} header must be signed")
    signed_at = _signing_date(auth, headers.get(auth.date_header, ""))
    skew = abs((datetime.now(UTC) - signed_at).total_seconds())
    max_skew = gw.settings.date_skew_seconds
    if skew > max_skew:
        raise Expired(
            f"the request was signed {int(skew)} s away from the server's clock "
            f"(at most {max_skew} s allowed)",
            code="RequestExpired",
        )
    body_hash = hashlib.sha256(body).hexdigest()
    declared = headers.get(auth.hash_header)
    if declared is not None and declared.strip().lower() != body_hash:
        raise BadRequest(f"{auth.hash_header} does not match the request body", code="InvalidParameter")

    token = headers.get(auth.token_header)
    if token and auth.token_header not in auth.signed_headers:
        raise _unauthorized("InvalidAuthorization", f"the {auth.token_header} header must be signed")
    key = await signing_key(gw, auth.access_key_id, token)
    try:
        candidates = sigv4.expected_signatures(
            auth,
            secret=key.secret,
            method=request.method,
            path=request.url.path,
            query=query,
            headers=headers,
            body_sha256=body_hash,
        )
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    if not sigv4.matches(auth, candidates):
        raise _mismatch()
    return key.principal(auth.access_key_id)


PRESIGNABLE = frozenset({"ApplyImageUpload", "CommitImageUpload"})
"""Actions a presigned URL may call (what ``get_upload_auth_token`` signs); minting credentials
(``AssumeRole``) needs a header-signed request."""
MUST_BE_SIGNED = ("Action", "Version", "ServiceId")
AUTHORITY_PARAMS = ("Overwrite",)
"""Parameters that widen what a presigned URL may do: refused unless signed (or "false")."""


async def _presigned(request: Request, gw: Gateway, query: sigv4.Query) -> Principal:
    """A presigned URL: valid from its ``X-Date`` (less the clock skew) for ``X-Expires``
    seconds (default 900); the signature is compared in constant time; parameters the signer did
    not list may be added by the URL's holder, so none of them may name the action, the service or
    an authority (``Overwrite``)."""
    try:
        p = sigv4.parse_presigned(query)
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    signed_at = _signing_date(p.auth, p.date)
    age = (datetime.now(UTC) - signed_at).total_seconds()
    if age < -gw.settings.date_skew_seconds:
        raise Expired(
            f"the presigned URL is dated {int(-age)} s in the server's future", code="RequestExpired"
        )
    if age > p.expires:
        raise Expired(
            f"the presigned URL expired {int(age - p.expires)} s ago (it was valid {p.expires} s)",
            code="RequestExpired",
        )
    token = _single_value(query, sigv4.TOKEN_PARAM)
    key = await signing_key(gw, p.auth.access_key_id, token)
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        expected = sigv4.presigned_signature(
            p,
            secret=key.secret,
            method=request.method,
            path=request.url.path,
            query=query,
            headers=headers,
            body_sha256=hashlib.sha256(b"").hexdigest(),
        )
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    if not sigv4.matches(p.auth, [expected]):
        raise _mismatch()
    unsigned = [name for name in MUST_BE_SIGNED if name not in p.signed_queries]
    if unsigned:
        raise Forbidden(f"a presigned URL must sign {', '.join(unsigned)}", code="AccessDenied")
    action = _single_value(query, "Action") or ""
    if action not in PRESIGNABLE:
        raise Forbidden(f"a presigned URL may not call {action[:64]!r}", code="AccessDenied")
    widened = [
        k for k, v in query if k in AUTHORITY_PARAMS and k not in p.signed_queries and v.lower() != "false"
    ]
    if widened:
        raise Forbidden(
            f"{widened[0]} was added to the presigned URL after signing; the signer must sign it",
            code="AccessDenied",
        )
    return key.principal(p.auth.access_key_id)


def _single_value(query: sigv4.Query, name: str) -> str | None:
    values = [v for k, v in query if k == name]
    if len(values) > 1:
        raise BadRequest(f"{name} must be given once", code="InvalidParameter")
    return values[0].strip() if values else None


def _signing_date(auth: sigv4.Authorization, value: str) -> datetime:
    try:
        signed_at = sigv4.parse_date(value)
    except sigv4.SignatureFormatError as exc:
        raise _unauthorized("InvalidAuthorization", str(exc)) from None
    if signed_at.strftime("%Y%m%d") != auth.day:
        raise _unauthorized("InvalidAuthorization", "the Credential scope date is not the signing date")
    return signed_at


def _mismatch() -> Forbidden:
    return Forbidden(
        "the request signature does not match (check the secret, the signed headers and the query)",
        code="SignatureDoesNotMatch",
    )


@dataclass(frozen=True)
class SigningKey:
    """The secret a signature is checked with, and what the principal behind it may do."""

    bucket: Bucket
    secret: str
    scope: Scope
    temporary: bool
    expires_at: int | None

    def principal(self, access_key_id: str) -> Principal:
        return Principal(
            bucket=self.bucket,
            access_key_id=access_key_id,
            temporary=self.temporary,
            scope=self.scope,
            expires_at=self.expires_at,
        )


async def signing_key(gw: Gateway, access_key_id: str, token: str | None) -> SigningKey:
    """A long-term AK/SK, or (with a session token) STS2 temporary credentials."""
    if token:
        bucket, secret, scope, expires_at = await _temporary(gw, access_key_id, token.strip())
        return SigningKey(bucket, secret, scope, True, expires_at)
    if access_key_id.startswith("AKTP"):
        raise _unauthorized("InvalidSecurityToken", "temporary credentials need their session token")
    found = await gw.find_key(AKSK, access_key_id)
    if found is None:
        raise _unauthorized("InvalidAccessKey", "the access key id is not known or was rotated")
    bucket, secret = found
    return SigningKey(bucket, secret, Scope(), False, None)


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
