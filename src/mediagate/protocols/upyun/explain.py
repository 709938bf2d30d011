"""UPYUN explainers for ``mediagate policy explain`` (see :mod:`mediagate.explain`).

* ``explain_rest``: an ``Authorization: UPYUN <operator>:<signature>`` header, checked against
  the bucket's operators for the given method, URI, Date and Content-MD5 (``signing``).
* ``explain_form``: a FORM API policy (base64 JSON) with its ``authorization`` or old md5
  ``signature``, decoded and validated by the FORM API's own ``policy`` module.
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from mediagate.core.buckets import FORM, UPYUN
from mediagate.core.errors import MediagateError
from mediagate.explain import ExplainContext, Explanation, ago, moment
from mediagate.protocols.upyun import policy, signing


def _uri_bucket(uri: str) -> str:
    return unquote(urlsplit(uri).path).lstrip("/").split("/", 1)[0]


async def _operator_secret(exp: Explanation, ctx: ExplainContext, operator: str) -> str | None:
    """The operator's password md5 if it is a credential of the bucket, else a finding."""
    if ctx.bucket is None:
        return None
    for key_id, secret in await ctx.gateway.secrets_of(ctx.bucket, UPYUN):
        if key_id == operator:
            exp.ok("operator", f"operator {operator!r} is a credential of bucket {ctx.bucket_name!r}")
            return secret
    elsewhere = await ctx.gateway.find_key(UPYUN, operator)
    where = f" (it belongs to bucket {elsewhere[0].name!r})" if elsewhere else ""
    exp.error(
        "operator",
        f"signed with operator {operator!r} which is not a credential of bucket {ctx.bucket_name!r}{where}",
    )
    return None


def _check_bucket(exp: Explanation, ctx: ExplainContext) -> None:
    if ctx.bucket is None:
        exp.error("bucket", f"bucket {ctx.bucket_name!r} does not exist on this server")


def _check_date(exp: Explanation, ctx: ExplainContext, date: str | None, what: str) -> None:
    skew = ctx.gateway.settings.date_skew_seconds
    if not date:
        exp.error("date", f"no {what}: the signature needs one (RFC 1123, e.g. {signing.format_http_date()})")
        return
    try:
        sent = signing.parse_http_date(date)
    except MediagateError:
        exp.error("date", f"{what} {date!r} is not an RFC 1123 date like {signing.format_http_date()}")
        return
    delta = (ctx.now - sent).total_seconds()
    direction = "behind" if delta > 0 else "ahead of"
    if abs(delta) > skew:
        exp.error(
            "date",
            f"{what} is {ago(delta)} {direction} server time; the limit is {ago(skew)} "
            "(check the client's clock)",
        )
    else:
        exp.ok("date", f"{what} is within {ago(skew)} of server time ({ago(delta)} {direction})")


async def explain_rest(token: str, ctx: ExplainContext) -> Explanation | None:
    if token[:6].upper() != "UPYUN ":
        return None
    exp = Explanation(dialect="UPYUN REST Authorization")
    try:
        operator, signature = signing.parse_authorization(token)
    except MediagateError:
        exp.error("format", "malformed header: expected 'UPYUN <operator>:<base64 signature>'")
        return exp
    method = (ctx.method or "GET").upper()
    exp.decoded = {"operator": operator, "method": method, "uri": ctx.uri, "date": ctx.date}
    if ctx.method is None:
        exp.info("method", "no --method given: checking as GET")
    _check_bucket(exp, ctx)
    uri = ctx.uri
    if not uri:
        exp.error("uri", "give --uri (the exact request-target signed, e.g. /bucket/a%20b.jpg)")
    elif _uri_bucket(uri) != ctx.bucket_name:
        exp.error("uri", f"the URI's bucket is {_uri_bucket(uri)!r} but the bucket is {ctx.bucket_name!r}")
    _check_date(exp, ctx, ctx.date, "Date (or X-Date)")
    secret = await _operator_secret(exp, ctx, operator)
    if secret is not None and uri and ctx.date:
        signed = signing.string_to_sign(method, uri, ctx.date, "", ctx.content_md5 or "")
        if signing.signature_matches(secret, signature, [signed]):
            exp.ok("signature", f"signature matches {signed!r}")
            exp.allows.append(f"{method} {uri} on bucket {ctx.bucket_name!r} as operator {operator!r}")
        else:
            exp.error("signature", _rest_mismatch(secret, signature, method, uri, ctx))
    return exp


def _rest_mismatch(secret: str, signature: str, method: str, uri: str, ctx: ExplainContext) -> str:
    """Why a REST signature does not match: try the usual mistakes and name the one that fits."""
    date = ctx.date or ""
    md5 = ctx.content_md5 or ""
    path, _, query = uri.partition("?")
    toggled = path.rstrip("/") if path.endswith("/") else path + "/"
    uris = [
        ("the URI decoded (sign the percent-encoded request-target instead)", unquote(uri)),
        ("the URI without its query", path),
        ("the URI with its trailing '/' toggled", toggled + (f"?{query}" if query else "")),
    ]
    variants = [
        (f"method {m}", signing.string_to_sign(m, uri, date, "", md5)) for m in _METHODS if m != method
    ]
    variants += [(label, signing.string_to_sign(method, u, date, "", md5)) for label, u in uris if u != uri]
    if md5:
        variants.append(("no Content-MD5", signing.string_to_sign(method, uri, date)))
    for label, message in variants:
        if signing.signature_matches(secret, signature, [message]):
            return f"signature does not match this request, but it would match with {label}"
    return (
        "signature does not match: the operator's password, or the method, URI, Date or "
        "Content-MD5 signed differ from this request"
    )


_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")


# -- FORM API policy --------------------------------------------------------------------------------

_FIELD = re.compile(r"policy field '([^']+)'")
_OWN_CHECKS = ("bucket", "service", "expiration", "date", "save-key")
"""Fields explained one by one below (for the wording); every other field is validated by
``policy.build_grant`` itself, one error at a time."""
_NEUTRAL: dict[str, Any] = {"save-key": "/probe.bin", "expiration": 2**40}


async def explain_form(token: str, ctx: ExplainContext) -> Explanation | None:
    try:
        decoded = policy.decode_policy(token)
    except MediagateError:
        return None  # not base64 JSON: another dialect's token
    doc = decoded.doc
    exp = Explanation(dialect="UPYUN FORM policy", decoded=dict(doc))
    _check_bucket(exp, ctx)
    _form_bucket(exp, ctx, doc)
    expiration = _form_expiration(exp, ctx, doc)
    if doc.get("date") is not None:
        _check_date(exp, ctx, decoded.text("date"), "policy 'date'")
    template = _form_save_key(exp, doc)
    others_ok = _other_fields(exp, ctx, doc)
    await _form_signature(exp, ctx, decoded)
    if exp.accepted and others_ok:
        _summarise(exp, ctx, decoded, expiration, template)
    return exp


def _form_bucket(exp: Explanation, ctx: ExplainContext, doc: dict[str, Any]) -> None:
    try:
        policy._check_bucket(doc, ctx.bucket_name)
    except MediagateError as exc:
        named = [(f, doc.get(f)) for f in ("bucket", "service") if doc.get(f) is not None]
        if not named:
            exp.error("bucket", "the policy names no bucket (field 'bucket', or 'service' as the SDK sends)")
        for name, value in named:
            if value != ctx.bucket_name:
                exp.error(
                    "bucket", f"{name} in policy is {value!r} but the URL bucket is {ctx.bucket_name!r}"
                )
        if not exp.findings or exp.findings[-1].topic != "bucket":
            exp.error("bucket", exc.message)
        return
    exp.ok("bucket", f"policy is for bucket {ctx.bucket_name!r}")


def _form_expiration(exp: Explanation, ctx: ExplainContext, doc: dict[str, Any]) -> int | None:
    try:
        expiration = policy._integer(doc, "expiration", required=True)
    except MediagateError as exc:
        exp.error("expiration", exc.message)
        return None
    assert expiration is not None
    left = expiration - int(ctx.now.timestamp())  # ints: a policy may hold any integer
    when = moment(expiration)
    if left < 0:
        exp.error("expiration", f"expired {ago(left)} ago ({when})")
    elif left > LONG_LIVED:
        exp.warn(
            "expiration",
            f"expires in {ago(left)} ({when}): a leaked policy can be replayed until then; "
            "sign short-lived policies (the SDK uses 30 min)",
        )
    else:
        exp.ok("expiration", f"expires in {ago(left)} ({when})")
    return expiration


LONG_LIVED = 7 * 86400


def _form_save_key(exp: Explanation, doc: dict[str, Any]) -> str | None:
    template = doc.get("save-key")
    try:
        policy._save_key(doc)
    except MediagateError as exc:
        if isinstance(template, str) and ".." in template.split("/"):
            exp.error("save-key", f"save-key {template!r} escapes the bucket ('..' segments are refused)")
        else:
            exp.error("save-key", exc.message)
        return None
    assert isinstance(template, str)
    if not any(p in template for p in ("{random", "{filemd5}", "{filename}", "{sec}")):
        exp.info("save-key", f"save-key {template!r} is fixed: each upload replaces the same object")
    else:
        exp.ok("save-key", f"save-key {template!r} stays inside the bucket")
    return template


def _other_fields(exp: Explanation, ctx: ExplainContext, doc: dict[str, Any]) -> bool:
    """Every remaining field, validated by ``policy.build_grant`` (the server's own code): the
    explained fields are neutralised, then each error's field is dropped and the rest checked
    again, so that every bad field is reported, not only the first."""
    probe = {k: v for k, v in doc.items() if k not in _OWN_CHECKS} | _NEUTRAL | {"bucket": ctx.bucket_name}
    ok = True
    for _ in range(len(doc) + 1):
        try:
            grant = policy.build_grant(
                policy.FormPolicy(raw="", doc=probe),
                ctx.bucket_name,
                date_skew_seconds=ctx.gateway.settings.date_skew_seconds,
                now=ctx.now.timestamp(),
            )
            policy.refuse_unsupported(grant)
            return ok
        except MediagateError as exc:
            ok = False
            match = _FIELD.search(exc.message)
            field = match.group(1) if match else ("apps" if "apps" in exc.message else None)
            if exc.code == "not_supported":
                field = next((k for k in probe if k.startswith("x-gmkerl-")), field)
                exp.error(field or "policy", exc.message)
                probe = {k: v for k, v in probe.items() if not (k.startswith("x-gmkerl-") or k == field)}
                continue
            exp.error(field or "policy", exc.message)
            if field is None or field not in probe:
                return False
            del probe[field]
    return ok


async def _form_signature(exp: Explanation, ctx: ExplainContext, decoded: policy.FormPolicy) -> None:
    if ctx.authorization is None and ctx.signature is None:
        exp.error(
            "signature",
            "no signature given: a FORM upload needs the 'authorization' (HMAC) or 'signature' (md5) "
            "field; pass --authorization or --signature to check it",
        )
        return
    if ctx.bucket is None:
        return
    if ctx.signature is not None:
        secrets = [s for _, s in await ctx.gateway.secrets_of(ctx.bucket, FORM)]
        good = False
        for secret in secrets:
            good |= hmac.compare_digest(
                signing.old_form_signature(decoded.raw, secret), ctx.signature.strip().lower()
            )
        if good:
            exp.ok("signature", "md5 'signature' matches the bucket's form API secret")
        else:
            exp.error(
                "signature",
                f"md5 'signature' does not match md5(policy + '&' + form API secret) for any form API "
                f"secret of bucket {ctx.bucket_name!r} (wrong secret, or the policy changed after signing)",
            )
        return
    assert ctx.authorization is not None
    try:
        operator, signature = signing.parse_authorization(ctx.authorization)
    except MediagateError:
        exp.error("signature", "malformed 'authorization': expected 'UPYUN <operator>:<base64 signature>'")
        return
    password_md5 = await _operator_secret(exp, ctx, operator)
    if password_md5 is None:
        return
    if ctx.uri and _uri_bucket(ctx.uri) != ctx.bucket_name:
        exp.error(
            "uri", f"bucket in the URI is {_uri_bucket(ctx.uri)!r} but the URL bucket is {ctx.bucket_name!r}"
        )
    # the same candidates as form._signed_strings: the path posted to, or its slash twins
    posted = [urlsplit(ctx.uri).path] if ctx.uri else []
    uris = list(dict.fromkeys([*posted, f"/{ctx.bucket_name}", f"/{ctx.bucket_name}/"]))
    date = decoded.text("date") or ""
    md5 = decoded.text("content-md5") or ""
    candidates = [signing.string_to_sign("POST", u, date, decoded.raw, m) for u in uris for m in {"", md5}]
    if signing.signature_matches(password_md5, signature, candidates):
        exp.ok("signature", f"'authorization' is a valid HMAC of operator {operator!r}")
        return
    hint = "" if date else " (the policy has no 'date': the SDK signs with it)"
    exp.error(
        "signature",
        "'authorization' does not match HMAC-SHA1(md5(password), 'POST&<uri>&<policy date>&<policy>') for "
        f"operator {operator!r} and uri {' or '.join(uris)}: wrong password, or another uri/date/policy "
        f"was signed{hint}",
    )


def _summarise(
    exp: Explanation,
    ctx: ExplainContext,
    decoded: policy.FormPolicy,
    expiration: int | None,
    template: str | None,
) -> None:
    doc = decoded.doc
    grant = policy.build_grant(
        decoded,
        ctx.bucket_name,
        date_skew_seconds=ctx.gateway.settings.date_skew_seconds,
        now=ctx.now.timestamp(),
    )
    allows = exp.allows
    allows.append(f"upload files to bucket {ctx.bucket_name!r} at save-key {template!r}")
    if expiration is not None:
        allows.append(f"until {moment(expiration)}")
    if grant.size_range:
        allows.append(f"sizes from {grant.size_range[0]} to {grant.size_range[1]} bytes")
    if grant.exact_size is not None:
        allows.append(f"exactly {grant.exact_size} bytes (large-file mode)")
    if grant.allowed_extensions:
        allows.append("only extensions " + ", ".join(sorted(grant.allowed_extensions)))
    if grant.width_range or grant.height_range:
        allows.append(
            f"images only: width {grant.width_range or 'any'}, height {grant.height_range or 'any'}"
        )
    if grant.content_md5:
        allows.append(f"only the file with MD5 {grant.content_md5}")
    if grant.content_type:
        allows.append(f"stored as {grant.content_type}")
    if grant.content_secret:
        allows.append("served only at <url>!<content-secret>")
    if grant.ttl_seconds:
        allows.append(f"deleted after {grant.ttl_seconds // 86400} days")
    for name in ("return-url", "notify-url", "callback-url"):
        if doc.get(name):
            allows.append(f"{name} {doc[name]}")
    allows.append("replacing an existing object of the same key")
