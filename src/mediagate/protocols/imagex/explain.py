"""``mediagate policy explain`` for ImageX: STS2 session tokens and the sealed tokens the dialect
hands out (upload ``Auth``, ``SessionKey``, web ``sessionid``), checked with the dialect's own code
(``tokens``, ``auth``, ``sts``), never revealing a secret."""

from __future__ import annotations

import time
from typing import Any

from mediagate.core.buckets import AKSK
from mediagate.explain import ExplainContext, Explanation, ago
from mediagate.protocols.imagex.apply import AUTH_PURPOSE, SESSION_KEY_PURPOSE
from mediagate.protocols.imagex.auth import SESSION_KIND
from mediagate.protocols.imagex.sts import WEB_SESSION_PURPOSE
from mediagate.protocols.imagex.tokens import open_sts2, parse_sts2, scope_from_policy, unseal


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
        payload: dict[str, Any] | None = unseal(context.gateway.secrets.derive(purpose), token)
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
