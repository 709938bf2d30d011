"""``mediagate policy explain`` for ImageX: STS2 session tokens, the sealed tokens the dialect
hands out (upload ``Auth``, ``SessionKey``, web ``sessionid``) and the SDK's presigned upload
tokens (``get_upload_auth_token``), checked with the dialect's own code (``tokens``, ``auth``,
``sts``, ``sigv4``), never revealing a secret."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any
from urllib.parse import parse_qsl

from mediagate.core import jsonin
from mediagate.core.buckets import AKSK
from mediagate.core.errors import MediagateError
from mediagate.explain import ExplainContext, Explanation, ago
from mediagate.protocols.imagex.apply import AUTH_PURPOSE, SESSION_KEY_PURPOSE
from mediagate.protocols.imagex.auth import MUST_BE_SIGNED, PRESIGNABLE, SESSION_KIND, signing_key
from mediagate.protocols.imagex.sts import WEB_SESSION_PURPOSE
from mediagate.protocols.imagex.tokens import open_sts2, parse_sts2, scope_from_policy, unseal
from mediagate.signing import sigv4


def _expiry(out: Explanation, expires: int, now: int) -> None:
    if expires <= now:
        out.error("expiration", f"expired {ago(now - expires)} ago")
    else:
        out.ok("expiration", f"valid for {ago(expires - now)} more")


async def explain_sts2(token: str, context: ExplainContext) -> Explanation | None:
    """An ImageX STS2 session token (``X-Security-Token`` / ``X-Amz-Security-Token``)."""
    inner = parse_sts2(token)
    if inner is None:
        return None
    out = Explanation(dialect="ImageX STS2 session token")
    out.decoded = {
        "LTAccessKeyId": inner.lt_access_key_id,
        "AccessKeyId": inner.access_key_id,
        "ExpiredTime": inner.expired_time,
        "PolicyString": inner.policy_string,
    }
    now = int(context.now.timestamp())
    found = await context.gateway.find_key(AKSK, inner.lt_access_key_id)
    if found is None:
        out.error("key", f"the issuing key {inner.lt_access_key_id} is unknown or was rotated")
    else:
        bucket, secret = found
        if context.bucket is not None and bucket.id != context.bucket.id:
            out.error("bucket", f"issued by a key of bucket {bucket.name}, not {context.bucket_name}")
        if open_sts2(inner, secret) is None:
            out.error("signature", "the token's signature does not verify with the issuing key")
        else:
            out.ok("signature", f"signed by the active key {inner.lt_access_key_id} of bucket {bucket.name}")
    _expiry(out, inner.expired_time, now)
    try:
        scope = scope_from_policy(inner.policy_string)
    except ValueError as exc:
        out.error("policy", str(exc))
        return out
    actions = sorted(scope.actions) if scope.actions is not None else ["every ImageX action"]
    services = sorted(scope.service_ids) if scope.service_ids is not None else ["any ServiceId"]
    out.allows.append(f"{', '.join(actions)} on {', '.join(services)}")
    if scope.key_patterns and any(scope.key_patterns):
        out.allows.append(f"only StoreKeys matching {', '.join(p for p in scope.key_patterns if p)}")
    if scope.overwrite:
        out.allows.append("overwriting existing files")
    if scope.session_id is not None:
        if await context.gateway.find_key(SESSION_KIND, scope.session_id) is None:
            out.error("session", "minted from a web session that has been revoked")
        else:
            out.info("session", "minted from a web session (revoking it revokes these credentials)")
    return out


_SEALED: tuple[tuple[str, str], ...] = (
    (AUTH_PURPOSE, "ImageX upload Auth"),
    (SESSION_KEY_PURPOSE, "ImageX SessionKey"),
    (WEB_SESSION_PURPOSE, "ImageX web sessionid"),
)


async def explain_sealed(token: str, context: ExplainContext) -> Explanation | None:
    """An upload ``Auth``, a ``SessionKey`` or a ``sessionid`` this server sealed."""
    if token.count(".") != 1 or " " in token:
        return None
    for purpose, name in _SEALED:
        payload: dict[str, Any] | None = unseal(context.gateway.secrets.derived(purpose), token)
        if payload is None:
            continue
        out = Explanation(dialect=name, decoded=dict(payload))
        out.ok("signature", "sealed by this server")
        bucket = str(payload.get("b"))
        if context.bucket_name and bucket != context.bucket_name:
            out.error("bucket", f"issued for ServiceId {bucket}, not {context.bucket_name}")
        _expiry(out, int(payload.get("e", 0)), int(time.time()))
        if purpose == AUTH_PURPOSE:
            size = payload.get("n")
            out.allows.append(
                f"uploading {payload.get('u')}" + (f" of exactly {size} bytes" if size is not None else "")
            )
        elif purpose == SESSION_KEY_PURPOSE:
            out.allows.append(f"committing once: {', '.join(str(u) for u in payload.get('u', []))}")
        else:
            if await context.gateway.find_key(SESSION_KIND, str(payload.get("i"))) is None:
                out.error("session", "this session was revoked")
            out.allows.append(f"minting 1-hour upload credentials for {bucket} at /mweb/v1/get_upload_token")
        return out
    return None


# -- presigned URLs (``get_upload_auth_token``) ----------------------------------------------------------

_METHODS = {"ApplyImageUpload": "GET", "CommitImageUpload": "POST"}
"""The method the SDK's ``api_info`` gives each action a token presigns."""


def _upload_token_queries(token: str) -> dict[str, str] | None:
    """``{name: query}`` of a ``get_upload_auth_token`` token (base64 JSON of two presigned query
    strings), or of one presigned query string / URL; None for anything else."""
    if "X-Signature=" in token:
        return {"presigned URL": token.partition("?")[2] or token}
    try:
        doc = jsonin.loads(base64.b64decode(token, validate=True))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(doc, dict):
        return None
    queries = {k: v for k, v in doc.items() if k.endswith("UploadToken") and isinstance(v, str)}
    return queries or None


async def explain_upload_token(token: str, context: ExplainContext) -> Explanation | None:
    """A volcengine ``get_upload_auth_token`` token, or one presigned OpenAPI URL: its key,
    validity window and signature, checked with ``auth``'s own code."""
    queries = _upload_token_queries(token)
    if queries is None:
        return None
    out = Explanation(dialect="ImageX upload token (presigned OpenAPI URLs)")
    for name, raw in queries.items():
        query = parse_qsl(raw, keep_blank_values=True)
        params = dict(query)
        action = params.get("Action", "")
        out.decoded[name] = {k: v for k, v in params.items() if k not in (sigv4.TOKEN_PARAM, "X-Signature")}
        try:
            p = sigv4.parse_presigned(query)
            signed_at = sigv4.parse_date(p.date)
        except sigv4.SignatureFormatError as exc:
            out.error(name, str(exc))
            continue
        now = context.now.timestamp()
        left = signed_at.timestamp() + p.expires - now
        if left <= 0:
            out.error(name, f"{action or 'the URL'} expired {ago(-left)} ago (it was valid {ago(p.expires)})")
        else:
            out.ok(name, f"{action or 'the URL'} is valid for {ago(left)} more")
        try:
            key = await signing_key(context.gateway, p.auth.access_key_id, params.get(sigv4.TOKEN_PARAM))
        except MediagateError as exc:
            out.error(name, exc.message)
            continue
        if context.bucket is not None and key.bucket.id != context.bucket.id:
            out.error(name, f"signed with a key of bucket {key.bucket.name}, not {context.bucket_name}")
        if p.auth.signed_headers:
            out.info(name, f"also signs the headers {', '.join(p.auth.signed_headers)}: checked on use")
        else:
            expected = sigv4.presigned_signature(
                p,
                secret=key.secret,
                method=_METHODS.get(action, "GET"),
                path="/",
                query=query,
                headers={},
                body_sha256=sigv4.EMPTY_SHA256,
            )
            if sigv4.matches(p.auth, [expected]):
                kind = "temporary" if key.temporary else "the active"
                out.ok(name, f"signed by {kind} key {p.auth.access_key_id}")
            else:
                out.error(name, "the signature does not verify with that key (tampered, or another secret)")
        if action not in PRESIGNABLE:
            out.error(name, f"a presigned URL may not call {action[:64]!r}")
        unsigned = [n for n in MUST_BE_SIGNED if n not in p.signed_queries]
        if unsigned:
            out.error(name, f"a presigned URL must sign {', '.join(unsigned)}")
        service = params.get("ServiceId")
        out.allows.append(
            f"{action} on ServiceId {service}" if service else f"{action} (no ServiceId signed)"
        )
    return out
