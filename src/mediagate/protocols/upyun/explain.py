"""UPYUN explainers for ``mediagate policy explain`` (see :mod:`mediagate.explain`).

* ``explain_rest``: an ``Authorization: UPYUN <operator>:<signature>`` header, checked against
  the bucket's operators for the given method, URI, Date and Content-MD5 (``signing``).
* ``explain_form``: a FORM API policy (base64 JSON) with its ``authorization`` or old md5
  ``signature``, decoded and validated by the FORM API's own ``policy`` module.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from mediagate.core.buckets import FORM, UPYUN  # noqa: F401 - FORM: see explain_form
from mediagate.core.errors import MediagateError
from mediagate.explain import ExplainContext, Explanation, ago
from mediagate.protocols.upyun import signing


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
        moment = signing.parse_http_date(date)
    except MediagateError:
        exp.error("date", f"{what} {date!r} is not an RFC 1123 date like {signing.format_http_date()}")
        return
    delta = (ctx.now - moment).total_seconds()
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
    _check_date(exp, ctx, ctx.date, "Date")
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
