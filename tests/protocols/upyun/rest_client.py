"""A raw UPYUN REST client written from the wire spec (shared/specs/upyun.md §2), for requests the
SDK cannot send (malformed ones) and for checking headers byte by byte. It signs with hashlib/hmac
directly, not with mediagate's signing module, so a signing bug cannot hide itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate
from urllib.parse import quote

import httpx

from mediagate.core.buckets import BucketCredentials


def object_uri(bucket: str, key: str) -> str:
    """``/<bucket>/<key>`` quoted the SDK's way (``quote(..., safe='~/')``)."""
    return quote(f"/{bucket}/{key.lstrip('/')}", safe="~/")


def sign(
    creds: BucketCredentials,
    method: str,
    uri: str,
    *,
    date: str | None = None,
    content_md5: str = "",
    operator: str | None = None,
    password: str | None = None,
) -> dict[str, str]:
    """``Authorization`` and ``Date`` for ``METHOD&URI&DATE[&Content-MD5]``."""
    date = formatdate(usegmt=True) if date is None else date
    key = hashlib.md5((password if password is not None else creds.password).encode()).hexdigest()
    message = "&".join(part for part in (method, uri, date, content_md5) if part)
    mac = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
    who = operator if operator is not None else creds.operator
    return {"Authorization": f"UPYUN {who}:{base64.b64encode(mac).decode()}", "Date": date}


def signed(
    client: httpx.Client,
    creds: BucketCredentials,
    method: str,
    uri: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send ``method uri`` signed (over a ``Content-MD5`` header when one is given)."""
    extra = dict(headers or {})
    md5 = next((v for k, v in extra.items() if k.lower() == "content-md5"), "")
    return client.request(
        method, uri, content=content, headers={**extra, **sign(creds, method, uri, content_md5=md5)}
    )
