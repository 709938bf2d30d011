"""Wantu explainers for ``mediagate policy explain`` (see :mod:`mediagate.explain`).

* ``explain_upload_token``: ``UPLOAD_AK_TOP <token>`` (or the bare token): AK, signature, namespace,
  expiration and every policy field, parsed by the dialect's own ``signing`` and ``policy``.
* ``explain_manage_token``: ``ACL_TOP <token>``: AK, and with ``--uri``/``--date`` the signature over
  every string the server accepts (``signing.manage_strings``, empty body) and the Date window.

Both return None for anything that is not shaped like their token (a truncated upload token
included: the registry then says no dialect recognises it), and never raise.
"""

from __future__ import annotations

import json

from mediagate.core.buckets import AKSK
from mediagate.core.errors import MediagateError
from mediagate.explain import ExplainContext, Explanation, ago, moment
from mediagate.protocols.wantu import signing
from mediagate.protocols.wantu.policy import WantuPolicy


def _strip(token: str, types: tuple[str, ...]) -> tuple[str, bool]:
    kind, _, rest = token.strip().partition(" ")
    if kind.upper() in types and rest.strip():
        return rest.strip(), True
    return token.strip(), False


async def _secret(exp: Explanation, ctx: ExplainContext, access_key: str) -> str | None:
    found = await ctx.gateway.find_key(AKSK, access_key)
    if found is None:
        exp.error("access key", f"access key {access_key!r} is not known to this server")
        return None
    bucket, secret = found
    if ctx.bucket is not None and bucket.id != ctx.bucket.id:
        exp.error(
            "access key",
            f"access key {access_key!r} belongs to namespace {bucket.name!r}, not {ctx.bucket_name!r}",
        )
        return None
    exp.ok("access key", f"access key {access_key!r} is the AK of namespace {bucket.name!r}")
    return secret


async def explain_upload_token(token: str, ctx: ExplainContext) -> Explanation | None:
    bare, prefixed = _strip(token, signing.UPLOAD_TYPES)
    try:
        parsed = signing.parse_upload_token(bare)
        raw_policy = parsed.policy()
    except MediagateError:
        return None  # not a well-formed token: the registry reports it as unrecognised
    exp = Explanation(
        dialect="Wantu upload token", decoded={"accessKey": parsed.access_key, "policy": raw_policy}
    )
    if not prefixed:
        exp.info("format", "a bare token: send it as 'Authorization: UPLOAD_AK_TOP <token>'")
    secret = await _secret(exp, ctx, parsed.access_key)
    if secret is not None:
        if signing.upload_signature_ok(parsed, secret):
            exp.ok("signature", "HMAC-SHA1 of the encoded policy matches the AK's secret")
        else:
            exp.error("signature", "the signature is not HMAC-SHA1(SK, encodedPolicy) for this AK's secret")
    try:
        policy = WantuPolicy.parse(raw_policy)
    except MediagateError as exc:
        exp.error("policy", exc.message)
        return exp
    if policy.namespace not in (None, "", ctx.bucket_name):
        exp.error("namespace", f"policy namespace {policy.namespace!r} is not {ctx.bucket_name!r}")
    now_ms = int(ctx.now.timestamp() * 1000)
    if policy.expiration_ms is None:
        exp.warn("expiration", "the token never expires (expiration absent, 0 or -1)")
    elif policy.expiration_ms < now_ms:
        exp.error("expiration", f"expired {ago((now_ms - policy.expiration_ms) // 1000)} ago")
    else:  # integer division: a policy may hold any integer
        when = moment(policy.expiration_ms // 1000)
        exp.ok("expiration", f"valid until {when} (in {ago((policy.expiration_ms - now_ms) // 1000)})")
    target = f"dir {policy.dir!r}" if policy.dir else "the form's dir (or /)"
    name = f"name {policy.name!r}" if policy.name else "the form's name field (required)"
    exp.allows.append(f"upload into namespace {ctx.bucket_name!r}, {target}, {name}")
    exp.allows.append(
        f"files up to {policy.size_limit} bytes"
        if policy.size_limit
        else "files up to the system limit (10 MiB images)"
    )
    if policy.mime_limit:
        exp.allows.append("types: " + ", ".join(policy.mime_limit))
    exp.allows.append("no overwrite (insertOnly)" if policy.insert_only else "overwriting an existing file")
    for label, value in (("callback to", policy.callback_url), ("303 redirect to", policy.return_url)):
        if value:
            exp.allows.append(f"{label} {value}")
    return exp


async def explain_manage_token(token: str, ctx: ExplainContext) -> Explanation | None:
    bare, prefixed = _strip(token, (signing.MANAGE_TYPE,))
    if not prefixed:
        return None
    exp = Explanation(dialect="Wantu manage token")
    try:
        parsed = signing.parse_manage_token(bare)
    except MediagateError as exc:
        exp.error("format", exc.message)
        return exp
    exp.decoded = {"accessKey": parsed.access_key, "signature": parsed.signature}
    secret = await _secret(exp, ctx, parsed.access_key)
    if not ctx.uri or not ctx.date:
        exp.info(
            "signature", "give --uri (path?query as sent) and --date (the Date header) to check the signature"
        )
        return exp
    if secret is not None:
        if signing.manage_signature_ok(parsed, secret, signing.manage_strings(ctx.uri, "", ctx.date)):
            exp.ok("signature", "HMAC-SHA1 over path?query, empty body and Date matches")
        else:
            exp.error(
                "signature",
                "no accepted string to sign matches; the server signs "
                + json.dumps(signing.manage_strings(ctx.uri, "", ctx.date)[0]),
            )
    try:
        skew = ctx.gateway.settings.date_skew_seconds
        signing.check_date(ctx.date, ctx.now, skew_seconds=skew)
        exp.ok("date", f"Date is within {signing.describe_seconds(skew)} of the server's clock")
    except MediagateError as exc:
        exp.error("date", exc.message)
    except (ValueError, OverflowError, OSError):  # a number no calendar holds: a finding, not a crash
        exp.error("date", f"the Date header {ctx.date[:40]!r} is no date the server can place")
    exp.allows.append(f"file and folder management of namespace {ctx.bucket_name!r}")
    return exp
