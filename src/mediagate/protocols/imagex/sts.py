"""Temporary credentials for a bucket (ServiceId): minted here, verified in ``auth``.

* :func:`mint` issues STS2 credentials (see ``tokens``) vouched for by the bucket's newest active
  long-term AK/SK: ``AKTP…`` id, secret, session token, expiry (default 1 h, 60 s … 12 h), an
  optional scope (actions, StoreKey prefix). Rotating that long-term key refuses them.
* ``AssumeRole`` (an OpenAPI action, signed with the long-term key) and ``mediagate sts create``
  call it.
* The Dreamina token step: ``POST /mweb/v1/get_upload_token`` with cookie ``sessionid=…`` answers
  ``{"ret": "0", "data": {access_key_id, secret_access_key, session_token}}`` and reissues the
  cookie ``HttpOnly; SameSite=Strict`` (``Secure`` over TLS). A sessionid is a sealed ``{id,
  bucket, expiry}`` plus a revocable credential row (``mediagate token create`` / ``revoke``);
  credentials minted from it name it in their policy, so revoking it revokes them.
"""

from __future__ import annotations

import secrets
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core.buckets import AKSK
from mediagate.core.errors import BadRequest, Expired, Forbidden, MediagateError, NotFound, Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.core.values import Bucket
from mediagate.http import gateway
from mediagate.protocols.imagex.auth import SESSION_KIND, Principal
from mediagate.protocols.imagex.errors import token_error
from mediagate.protocols.imagex.tokens import (
    ACTION_APPLY,
    ACTION_COMMIT,
    Scope,
    TemporaryCredentials,
    mint_sts2,
    seal,
    unseal,
)

DEFAULT_TTL = 3600
MIN_TTL = 60
MAX_TTL = 12 * 3600
WEB_SESSION_PURPOSE = "imagex-web-session"
DEFAULT_SESSION_TTL = 30 * 24 * 3600
MAX_SESSION_TTL = 365 * 24 * 3600


def bounded_ttl(ttl: int | None) -> int:
    ttl = DEFAULT_TTL if ttl is None else ttl
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise BadRequest(
            f"the duration must be between {MIN_TTL} and {MAX_TTL} seconds", code="InvalidParameter"
        )
    return ttl


def make_scope(
    bucket: str,
    *,
    actions: list[str] | None = None,
    key_prefix: str | None = None,
    session_id: str | None = None,
) -> Scope:
    chosen = set()
    for action in actions or ["ApplyImageUpload", "CommitImageUpload"]:
        name = action if action.startswith("ImageX:") else f"ImageX:{action}"
        if name not in (ACTION_APPLY, ACTION_COMMIT):
            raise BadRequest(
                f"unknown action {action!r} (ApplyImageUpload, CommitImageUpload)", code="InvalidParameter"
            )
        chosen.add(name)
    patterns = (key_prefix.lstrip("/") + "*",) if key_prefix else ()
    return Scope(
        actions=frozenset(chosen),
        service_ids=frozenset({bucket}),
        key_patterns=patterns,
        session_id=session_id,
    )


async def mint(
    gw: Gateway, bucket: Bucket, *, ttl: int | None = None, scope: Scope | None = None
) -> TemporaryCredentials:
    """Temporary credentials for ``bucket``, vouched for by its newest long-term key."""
    keys = await gw.secrets_of(bucket, AKSK)
    if not keys:
        raise Forbidden(
            "this bucket has no active access key to vouch for temporary credentials", code="AccessDenied"
        )
    lt_id, lt_secret = keys[0]
    policy = (scope or make_scope(bucket.name)).as_policy()
    return mint_sts2(lt_id, lt_secret, ttl_seconds=bounded_ttl(ttl), policy=policy)


async def assume_role(gw: Gateway, principal: Principal, params: dict[str, list[str]]) -> dict[str, Any]:
    """``AssumeRole``: long-term keys only (temporary ones cannot extend themselves)."""
    if principal.temporary:
        raise Forbidden("temporary credentials cannot mint more credentials", code="AccessDenied")
    raw_ttl = (params.get("DurationSeconds") or [""])[0]
    try:
        ttl = int(raw_ttl) if raw_ttl else None
    except ValueError:
        raise BadRequest("DurationSeconds must be an integer", code="InvalidParameter") from None
    actions = [a for v in params.get("Actions", []) for a in v.split(",") if a.strip()]
    prefix = (params.get("KeyPrefix") or [""])[0] or None
    scope = make_scope(principal.bucket.name, actions=[a.strip() for a in actions] or None, key_prefix=prefix)
    creds = await mint(gw, principal.bucket, ttl=ttl, scope=scope)
    data = creds.as_dict()
    return {
        "Credentials": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "SessionToken": creds.session_token,
            "ExpiredTime": data["expired_time"],
            "CurrentTime": data["current_time"],
        },
        "ServiceId": principal.bucket.name,
    }


# -- web sessions (Dreamina's sessionid cookie) ---------------------------------------------------------


async def create_web_session(gw: Gateway, bucket: Bucket, *, ttl: int = DEFAULT_SESSION_TTL) -> str:
    if not 60 <= ttl <= MAX_SESSION_TTL:
        raise BadRequest(f"the session lifetime must be between 60 and {MAX_SESSION_TTL} seconds")
    session_id = secrets.token_hex(16)
    await gw.add_key(bucket, SESSION_KIND, session_id, secrets.token_urlsafe(16))
    payload = {"i": session_id, "b": bucket.name, "e": int(time.time()) + ttl}
    return seal(gw.secrets.derive(WEB_SESSION_PURPOSE), payload)


async def revoke_web_session(gw: Gateway, sessionid: str) -> bool:
    """Revoke by the sessionid itself or by its inner id."""
    payload = unseal(gw.secrets.derived(WEB_SESSION_PURPOSE), sessionid)
    session_id = str(payload["i"]) if payload else sessionid
    return await gw.revoke_key(SESSION_KIND, session_id)


async def _web_session(gw: Gateway, request: Request) -> tuple[Bucket, str, int, str]:
    """(bucket, session id, expiry, the cookie's value) of the request's valid ``sessionid``."""
    cookie = SimpleCookie()
    try:
        cookie.load(request.headers.get("cookie", ""))
    except CookieError:
        raise Unauthorized("not login", code="NotLogin") from None
    morsel = cookie.get("sessionid")
    value = morsel.value if morsel else ""
    payload = unseal(gw.secrets.derived(WEB_SESSION_PURPOSE), value) if value else None
    if payload is None:
        raise Unauthorized("not login", code="NotLogin")
    expires = int(payload.get("e", 0))
    if expires <= time.time():
        raise Unauthorized("not login: the session has expired", code="NotLogin")
    session_id = str(payload.get("i"))
    if await gw.find_key(SESSION_KIND, session_id) is None:
        raise Unauthorized("not login: the session was revoked", code="NotLogin")
    bucket = await gw.find_bucket(str(payload.get("b")))
    if bucket is None:
        raise NotFound("the session's service no longer exists")
    return bucket, session_id, expires, value


async def get_upload_token(request: Request) -> Response:
    """``POST /mweb/v1/get_upload_token`` (query and body are informational)."""
    gw = gateway(request)
    try:
        bucket, session_id, session_expires, cookie = await _web_session(gw, request)
        ttl = min(DEFAULT_TTL, int(session_expires - time.time()))
        if ttl < MIN_TTL:
            raise Expired("the session expires too soon to mint credentials", code="NotLogin")
        creds = await mint(gw, bucket, ttl=ttl, scope=make_scope(bucket.name, session_id=session_id))
    except MediagateError as exc:
        return token_error(exc)
    response = JSONResponse({"ret": "0", "errmsg": "success", "data": creds.as_dict()})
    set_session_cookie(request, response, cookie, session_expires)
    return response


def set_session_cookie(request: Request, response: Response, value: str, expires: int) -> None:
    """(Re)issue the ``sessionid`` cookie locked down: ``HttpOnly`` (no script reads it),
    ``SameSite=Strict`` (no other site's page, and no sandboxed upload, sends it) and, over TLS or
    behind an https ``public_url``, ``Secure``. Reissuing it replaces a cookie a browser was given
    without these flags."""
    public_url = gateway(request).settings.public_url or ""
    response.set_cookie(
        "sessionid",
        value,
        max_age=max(0, int(expires - time.time())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or public_url.startswith("https://"),
    )
