"""The two request-signing schemes ImageX clients use, for signing (our client) and verifying.

Scheme ``AWS4-HMAC-SHA256`` is what the Dreamina seed script does by hand: headers ``X-Amz-Date``,
``X-Amz-Security-Token`` and, for a non-empty body, ``X-Amz-Content-Sha256``; no ``host`` header;
the query joined as raw ``k=v`` (not URL-encoded); scope ``<day>/<region>/<service>/aws4_request``;
key chain starting from ``"AWS4" + secret``.

Scheme ``HMAC-SHA256`` is the volcengine SDK's ``SignerV4``: headers ``X-Date``,
``X-Security-Token``, ``X-Content-Sha256`` (always sent), ``Host`` signed (its ``:80``/``:443``
dropped), query RFC3986-encoded (``quote(.., safe='-_.~')``, list values in order); scope
``<day>/<region>/<service>/request``; key chain starting from the bare secret.

Both share one canonical request layout::

    METHOD \\n PATH \\n QUERY \\n "name:value\\n" per signed header \\n SIGNED_HEADERS \\n BODY_SHA256

Nothing here knows HTTP frameworks or the server (it is shared with the Python SDK, see
``mediagate.signing``); :func:`parse_authorization` and :func:`expected_signatures`
are what the server uses, :func:`sign` what clients use.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

AWS = "AWS4-HMAC-SHA256"
VOLC = "HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_TERMINATOR = {AWS: "aws4_request", VOLC: "request"}
_DATE_HEADER = {AWS: "x-amz-date", VOLC: "x-date"}
_TOKEN_HEADER = {AWS: "x-amz-security-token", VOLC: "x-security-token"}
_HASH_HEADER = {AWS: "x-amz-content-sha256", VOLC: "x-content-sha256"}

_AUTH = re.compile(
    r"^(?P<alg>AWS4-HMAC-SHA256|HMAC-SHA256)\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]{64})\s*$"
)
_DATE = re.compile(r"^\d{8}T\d{6}Z$")

Query = Sequence[tuple[str, str]]


class SignatureFormatError(ValueError):
    """The Authorization header is not a well-formed signature of either scheme."""


@dataclass(frozen=True)
class Authorization:
    """A parsed ``Authorization`` header."""

    algorithm: str
    access_key_id: str
    day: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.day}/{self.region}/{self.service}/{_TERMINATOR[self.algorithm]}"

    @property
    def date_header(self) -> str:
        return _DATE_HEADER[self.algorithm]

    @property
    def token_header(self) -> str:
        return _TOKEN_HEADER[self.algorithm]

    @property
    def hash_header(self) -> str:
        return _HASH_HEADER[self.algorithm]


def parse_authorization(value: str) -> Authorization:
    match = _AUTH.match(value.strip())
    if match is None:
        raise SignatureFormatError(
            "the Authorization header is not an AWS4-HMAC-SHA256/HMAC-SHA256 signature"
        )
    return _authorization(match["alg"], match["cred"], match["signed"], match["sig"])


def _authorization(algorithm: str, credential: str, signed_headers: str, sig: str) -> Authorization:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != _TERMINATOR[algorithm] or not re.fullmatch(r"\d{8}", parts[1]):
        raise SignatureFormatError(
            f"Credential must be <AccessKeyId>/<YYYYMMDD>/<region>/<service>/{_TERMINATOR[algorithm]}"
        )
    if not parts[0] or not parts[2] or not parts[3]:
        raise SignatureFormatError("Credential has an empty access key id, region or service")
    signed = tuple(signed_headers.lower().split(";")) if signed_headers else ()
    if list(signed) != sorted(set(signed)) or "" in signed:
        raise SignatureFormatError("SignedHeaders must be lower-case names, sorted, without duplicates")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sig):
        raise SignatureFormatError("the signature must be 64 hex digits")
    return Authorization(
        algorithm=algorithm,
        access_key_id=parts[0],
        day=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=signed,
        signature=sig.lower(),
    )


def parse_date(value: str) -> datetime:
    if not _DATE.match(value):
        raise SignatureFormatError("the signing date must look like 20240101T000000Z")
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureFormatError("the signing date is not a valid date") from exc


# -- canonical parts -----------------------------------------------------------------------------------


def _sorted(query: Query) -> list[tuple[str, str]]:
    # stable: repeated keys keep the order they were sent in (the SDK's doseq lists)
    return sorted(query, key=lambda kv: kv[0])


def raw_query(query: Query) -> str:
    """The seed's canonical query: sorted ``k=v`` joined by ``&``, nothing encoded."""
    return "&".join(f"{k}={v}" for k, v in _sorted(query))


def encoded_query(query: Query) -> str:
    """The SDK's canonical query: sorted, RFC3986-encoded keys and values."""
    joined = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in _sorted(query))
    return joined.replace("+", "%20")


def canonical_path(path: str) -> str:
    return quote(path or "/").replace("%2F", "/").replace("+", "%20")


def signing_host(host: str) -> str:
    """The SDK drops a default port from the Host it signs."""
    name, sep, port = host.rpartition(":")
    if sep and port in ("80", "443") and "]" not in port:
        return name
    return host


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    body_sha256: str,
) -> str:
    lines = "".join(f"{name}:{value}\n" for name, value in headers)
    signed = ";".join(name for name, _ in headers)
    return f"{method}\n{path}\n{query}\n{lines}\n{signed}\n{body_sha256}"


def signing_key(algorithm: str, secret: str, day: str, region: str, service: str) -> bytes:
    start = ("AWS4" + secret) if algorithm == AWS else secret
    key = _hmac(start.encode(), day)
    for part in (region, service, _TERMINATOR[algorithm]):
        key = _hmac(key, part)
    return key


def signature(
    algorithm: str, secret: str, date: str, scope_parts: tuple[str, str, str], canonical: str
) -> str:
    day, region, service = scope_parts
    scope = f"{day}/{region}/{service}/{_TERMINATOR[algorithm]}"
    to_sign = f"{algorithm}\n{date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(
        signing_key(algorithm, secret, day, region, service), to_sign.encode(), "sha256"
    ).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


# -- verifying -----------------------------------------------------------------------------------------


def expected_signatures(
    auth: Authorization,
    *,
    secret: str,
    method: str,
    path: str,
    query: Query,
    headers: Mapping[str, str],
    body_sha256: str,
) -> list[str]:
    """The signatures a correct client could have produced for this request (one per accepted
    spelling of the canonical query). ``headers`` is keyed by lower-case name."""
    signed: list[tuple[str, str]] = []
    for name in auth.signed_headers:
        value = headers.get(name)
        if value is None:
            raise SignatureFormatError(f"the signed header {name!r} is missing from the request")
        value = value.strip()
        if name == "host" and auth.algorithm == VOLC:
            value = signing_host(value)
        signed.append((name, value))
    date = headers.get(auth.date_header, "")
    spellings = [encoded_query(query)]
    if auth.algorithm == AWS:
        spellings.insert(0, raw_query(query))
    results = []
    for spelled in dict.fromkeys(spellings):
        canonical = canonical_request(method, canonical_path(path), spelled, signed, body_sha256)
        results.append(
            signature(auth.algorithm, secret, date, (auth.day, auth.region, auth.service), canonical)
        )
    return results


def matches(auth: Authorization, candidates: Iterable[str]) -> bool:
    """Constant-time comparison against every candidate (no early exit)."""
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(candidate.encode(), auth.signature.encode())
    return found


# -- signing (clients) -------------------------------------------------------------------------------


def sign(
    algorithm: str,
    *,
    access_key_id: str,
    secret: str,
    method: str,
    host: str,
    path: str = "/",
    query: Query = (),
    body: bytes = b"",
    session_token: str | None = None,
    region: str = "cn-north-1",
    service: str | None = None,
    content_type: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers to add to a request, signed the way the seed (AWS) or the SDK (VOLC) does."""
    date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    day = date[:8]
    body_hash = hashlib.sha256(body).hexdigest()
    headers: dict[str, str] = {}
    if algorithm == AWS:
        service = service or "imagex"
        headers["X-Amz-Date"] = date
        if session_token:
            headers["X-Amz-Security-Token"] = session_token
        if body:
            headers["X-Amz-Content-Sha256"] = body_hash
        spelled = raw_query(query)
    else:
        service = service or "ImageX"
        headers["Host"] = host
        headers["X-Date"] = date
        if session_token:
            headers["X-Security-Token"] = session_token
        headers["X-Content-Sha256"] = body_hash
        if content_type:
            headers["Content-Type"] = content_type
        spelled = encoded_query(query)
    signed = sorted(
        (name.lower(), signing_host(value) if name == "Host" else value) for name, value in headers.items()
    )
    canonical = canonical_request(method, canonical_path(path), spelled, signed, body_hash)
    sig = signature(algorithm, secret, date, (day, region, service), canonical)
    scope = f"{day}/{region}/{service}/{_TERMINATOR[algorithm]}"
    names = ";".join(name for name, _ in signed)
    headers["Authorization"] = (
        f"{algorithm} Credential={access_key_id}/{scope}, SignedHeaders={names}, Signature={sig}"
    )
    return headers


# -- presigned URLs (the SDK's ``get_sign_url`` / ``get_upload_auth_token``) ---------------------------

PRESIGN_DEFAULT_EXPIRES = 900
"""Seconds a presigned URL lives when it names no ``X-Expires`` (the SDKs' documented default)."""
PRESIGN_MAX_EXPIRES = 7 * 24 * 3600
EXPIRES_PARAMS = ("X-Expires", "X-Amz-Expires")
SIGNATURE_PARAM = "X-Signature"
TOKEN_PARAM = "X-Security-Token"
_PRESIGN_REQUIRED = ("X-Algorithm", "X-Credential", "X-Date", "X-SignedHeaders", "X-SignedQueries")


@dataclass(frozen=True)
class Presigned:
    """The signature carried in a query string (volcengine ``SignerV4.sign_url``).

    The SDK adds ``X-Date``, ``X-NotSignBody``, ``X-Credential``, ``X-Algorithm``,
    ``X-SignedHeaders`` (empty) and ``X-SignedQueries`` (every key present at that point, itself
    included), then ``X-Security-Token`` (the Go SDK lists it in ``X-SignedQueries``, the Python
    SDK does not; both sign it), and signs every one of those parameters. The body is not signed
    when ``X-NotSignBody`` is (its hash is that of the empty string). Parameters the signer did not
    list (and that are not the token) may be added by whoever holds the URL; they are not part of
    the signature, so they must not carry authority (see ``auth``)."""

    auth: Authorization
    date: str
    expires: int
    signed_queries: frozenset[str]
    sign_body: bool


def is_presigned(query: Query) -> bool:
    return any(k == SIGNATURE_PARAM for k, _ in query)


def _single(query: Query, name: str) -> str | None:
    values = [v for k, v in query if k == name]
    if len(values) > 1:
        raise SignatureFormatError(f"{name} must appear once in a presigned URL")
    return values[0] if values else None


def parse_presigned(query: Query) -> Presigned:
    """The presigned-URL signature of ``query``; SignatureFormatError says what is malformed."""
    fields = {name: _single(query, name) for name in (*_PRESIGN_REQUIRED, SIGNATURE_PARAM)}
    missing = [name for name, value in fields.items() if value is None]
    if missing:
        raise SignatureFormatError(f"a presigned URL needs {', '.join(missing)}")
    if fields["X-Algorithm"] != VOLC:
        raise SignatureFormatError("a presigned URL must use X-Algorithm=HMAC-SHA256")
    auth = _authorization(
        VOLC, fields["X-Credential"] or "", fields["X-SignedHeaders"] or "", fields[SIGNATURE_PARAM] or ""
    )
    date = fields["X-Date"] or ""
    parse_date(date)
    signed_queries = frozenset(q for q in (fields["X-SignedQueries"] or "").split(";") if q)
    for name in ("X-Date", "X-Credential", "X-Algorithm", "X-SignedHeaders", "X-SignedQueries"):
        if name not in signed_queries:
            raise SignatureFormatError(f"X-SignedQueries must list {name}")
    present = {k for k, _ in query}
    absent = sorted(signed_queries - present)
    if absent:
        raise SignatureFormatError(f"the signed query parameter {absent[0][:64]!r} is missing")
    expires = PRESIGN_DEFAULT_EXPIRES
    for name in EXPIRES_PARAMS:
        raw = _single(query, name)
        if raw is None:
            continue
        if name not in signed_queries:
            raise SignatureFormatError(f"{name} must be one of the signed queries")
        if not raw.isdigit() or len(raw) > 9 or not 1 <= int(raw) <= PRESIGN_MAX_EXPIRES:
            raise SignatureFormatError(f"{name} must be 1..{PRESIGN_MAX_EXPIRES} seconds")
        expires = int(raw)
    return Presigned(
        auth=auth,
        date=date,
        expires=expires,
        signed_queries=signed_queries,
        sign_body="X-NotSignBody" not in signed_queries,
    )


def presigned_query(query: Query, signed_queries: frozenset[str]) -> list[tuple[str, str]]:
    """The parameters a presigned signature covers: the listed ones and the session token."""
    return [(k, v) for k, v in query if k in signed_queries or k == TOKEN_PARAM]


def presigned_signature(
    p: Presigned,
    *,
    secret: str,
    method: str,
    path: str,
    query: Query,
    headers: Mapping[str, str],
    body_sha256: str,
) -> str:
    """The signature a correct signer produced for this request. With no signed headers the SDKs
    put a lone newline where the header lines go (``'\\n'.join([.., query, '\\n', '', hash])``)."""
    signed: list[tuple[str, str]] = []
    for name in p.auth.signed_headers:
        value = headers.get(name)
        if value is None:
            raise SignatureFormatError(f"the signed header {name!r} is missing from the request")
        value = value.strip()
        signed.append((name, signing_host(value) if name == "host" else value))
    spelled = encoded_query(presigned_query(query, p.signed_queries))
    body = body_sha256 if p.sign_body else EMPTY_SHA256
    path = canonical_path(path)
    if signed:
        canonical = canonical_request(method, path, spelled, signed, body)
    else:
        canonical = f"{method}\n{path}\n{spelled}\n\n\n\n{body}"
    auth = p.auth
    return signature(auth.algorithm, secret, p.date, (auth.day, auth.region, auth.service), canonical)


def presign(
    *,
    access_key_id: str,
    secret: str,
    method: str,
    path: str = "/",
    query: Query = (),
    session_token: str | None = None,
    region: str = "cn-north-1",
    service: str = "ImageX",
    host: str | None = None,
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """The query of a presigned URL, built as the Python SDK's ``SignerV4.sign_url`` builds it;
    with ``host``, the ``host`` header is signed too (``X-SignedHeaders=host``, as some SDKs do)."""
    date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{date[:8]}/{region}/{service}/request"
    params = dict(query)
    params.update(
        {
            "X-Date": date,
            "X-NotSignBody": "",
            "X-Credential": f"{access_key_id}/{scope}",
            "X-Algorithm": VOLC,
            "X-SignedHeaders": "host" if host else "",
            "X-SignedQueries": "",
        }
    )
    params["X-SignedQueries"] = ";".join(sorted(params))
    if session_token:
        params[TOKEN_PARAM] = session_token
    items = list(params.items())
    path, spelled = canonical_path(path), encoded_query(items)
    if host:
        canonical = canonical_request(method, path, spelled, [("host", signing_host(host))], EMPTY_SHA256)
    else:
        canonical = f"{method}\n{path}\n{spelled}\n\n\n\n{EMPTY_SHA256}"
    sig = signature(VOLC, secret, date, (date[:8], region, service), canonical)
    return [*items, (SIGNATURE_PARAM, sig)]
