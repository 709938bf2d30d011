"""UPYUN adapter: the REST API ``PUT /<bucket>/<key>`` signed ``UPYUN <operator>:<signature>``
(HMAC-SHA1 under md5(password) over ``METHOD&URI&DATE&CONTENT_MD5``), body streamed."""

from __future__ import annotations

from email.utils import formatdate
from urllib.parse import quote

import httpx

from mediagate.client.base import ObjectExists, UploadResult, error_from, upload_key
from mediagate.client.sources import ChunkReader, Progress, Source
from mediagate.signing import upyun as signing


class UpyunClient:
    protocol = "upyun"

    def __init__(
        self, endpoint: str, bucket: str, operator: str, password: str, *, client: httpx.Client | None = None
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket, self.operator = bucket, operator
        self.password_md5 = signing.md5hex(password)
        self.http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))

    def sign(self, method: str, uri: str, date: str, content_md5: str = "") -> str:
        message = signing.string_to_sign(method, uri, date, "", content_md5)
        return signing.authorization(self.operator, self.password_md5, message)

    def exists(self, key: str) -> bool:
        """Whether ``key`` is taken (REST ``HEAD``, what the SDK's ``getinfo`` sends)."""
        uri = quote(f"/{self.bucket}/{key.lstrip('/')}")
        date = formatdate(usegmt=True)
        headers = {"Date": date, "Authorization": self.sign("HEAD", uri, date)}
        resp = self.http.head(f"{self.endpoint}{uri}", headers=headers)
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise error_from(resp, "HEAD")
        return True

    def upload(
        self,
        source: Source,
        *,
        key: str | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> UploadResult:
        key = upload_key(key, source)
        uri = quote(f"/{self.bucket}/{key}")
        if not overwrite and self.exists(key):
            raise ObjectExists(f"/{self.bucket}/{key} already exists", status=409, code="40900002")
        date = formatdate(usegmt=True)
        headers = {
            "Date": date,
            "Authorization": self.sign("PUT", uri, date, source.md5),
            "Content-MD5": source.md5,
            "Content-Length": str(source.size),
            "Content-Type": source.content_type,
        }
        if not overwrite:  # mediagate refuses atomically; the HEAD above covers the real cloud
            headers["If-None-Match"] = "*"
        resp = self.http.put(
            f"{self.endpoint}{uri}", content=ChunkReader(source.path, progress), headers=headers
        )
        if resp.status_code != 200:
            raise error_from(resp, "PUT")
        return UploadResult(
            self.protocol,
            source.label,
            self.bucket,
            key,
            f"/{self.bucket}/{key}",
            f"{self.endpoint}{uri}",
            source.size,
            source.md5,
        )
