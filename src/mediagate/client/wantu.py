"""Wantu adapter, straight from seeds/wantu-media-api.txt: an ``UPLOAD_AK_TOP`` token
(``urlsafe_b64(AK:encodedPolicy:hex(hmac_sha1(encodedPolicy, SK)))``) and
``POST /api/proxy/upload`` multipart with ``dir``, ``name``, ``md5``, ``size`` and ``content`` last."""

from __future__ import annotations

import time
from typing import Any

import httpx

from mediagate.client.base import UploadResult, error_from, upload_key
from mediagate.client.sources import Progress, Source
from mediagate.signing.wantu import upload_token


class _Reporting:
    """A file object that reports how much httpx has read from it."""

    def __init__(self, source: Source, progress: Progress | None) -> None:
        self.file = source.path.open("rb")
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        if self.progress and data:
            self.progress(len(data))
        return data

    def close(self) -> None:
        self.file.close()


class WantuClient:
    protocol = "wantu"

    def __init__(
        self,
        endpoint: str,
        namespace: str,
        access_key: str,
        secret_key: str,
        *,
        ttl: int = 3600,
        client: httpx.Client | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.namespace, self.ak, self.sk, self.ttl = namespace, access_key, secret_key, ttl
        self.http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))

    def token(self, policy: dict[str, Any]) -> str:
        return "UPLOAD_AK_TOP " + upload_token(self.ak, self.sk, policy)

    def upload(
        self,
        source: Source,
        *,
        key: str | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> UploadResult:
        key = upload_key(key, source)
        folder, _, name = key.rpartition("/")
        policy = {
            "namespace": self.namespace,
            "expiration": int(time.time() * 1000) + self.ttl * 1000,
            "insertOnly": 0 if overwrite else 1,
        }
        fields = {"dir": "/" + folder, "name": name, "md5": source.md5, "size": str(source.size)}
        body = _Reporting(source, progress)
        try:
            resp = self.http.post(
                f"{self.endpoint}/api/proxy/upload",
                data=fields,
                files={"content": (name, body, source.content_type)},  # type: ignore[dict-item]
                headers={"Authorization": self.token(policy)},
            )
        finally:
            body.close()
        if resp.status_code != 200:
            raise error_from(resp, "upload")
        answer = resp.json()
        url = answer.get("url") or f"{self.endpoint}/{self.namespace}/{key}"
        return UploadResult(
            self.protocol,
            source.label,
            self.namespace,
            key,
            f"/{self.namespace}/{key}",
            url,
            source.size,
            source.md5,
        )
