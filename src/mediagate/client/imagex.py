"""ImageX adapter: ApplyImageUpload → upload host (whole or chunked, like the volcengine SDK) →
CommitImageUpload, signed with the SDK's HMAC-SHA256 scheme (long-term or STS keys)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from mediagate.client.base import UploadResult, error_from
from mediagate.client.sources import ChunkReader, Progress, Source
from mediagate.signing import sigv4

VERSION = "2018-08-01"
CHUNK = 20 * 1024 * 1024
"""The SDK's MinChunkSize: files from this size go up in parts."""


class ImageXClient:
    protocol = "imagex"

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        session_token: str | None = None,
        region: str = "cn-north-1",
        client: httpx.Client | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.ak, self.sk, self.token, self.region = access_key_id, secret_access_key, session_token, region
        self.http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
        self.scheme = httpx.URL(self.endpoint).scheme or "https"

    def _call(
        self, method: str, action: str, params: list[tuple[str, str]], body: bytes = b""
    ) -> dict[str, Any]:
        query = [("Action", action), ("Version", VERSION), *params]
        host = httpx.URL(self.endpoint).netloc.decode()
        headers = sigv4.sign(
            sigv4.VOLC,
            access_key_id=self.ak,
            secret=self.sk,
            method=method,
            host=host,
            query=query,
            body=body,
            session_token=self.token,
            region=self.region,
            content_type="application/json" if method == "POST" else None,
        )
        resp = self.http.request(
            method,
            f"{self.endpoint}/",
            params=tuple(query),
            headers=headers,
            content=body or None,
        )
        if resp.status_code != 200:
            raise error_from(resp, action)
        doc: dict[str, Any] = resp.json()
        if "Error" in doc.get("ResponseMetadata", {}):
            raise error_from(resp, action)
        result: dict[str, Any] = doc["Result"]
        return result

    def apply(
        self, *, key: str | None = None, overwrite: bool = False, size: int | None = None
    ) -> dict[str, Any]:
        params = [("ServiceId", self.bucket), ("UploadNum", "1"), ("Overwrite", str(overwrite))]
        if key:
            params.append(("StoreKeys", key))
        if size is not None:
            params.append(("FileSize", str(size)))
        address: dict[str, Any] = self._call("GET", "ApplyImageUpload", params)["UploadAddress"]
        return address

    def commit(self, session_key: str, oids: list[str]) -> dict[str, Any]:
        body = json.dumps(
            {"SessionKey": session_key, "SuccessOids": oids, "Functions": [], "OptionInfos": []}
        )
        return self._call("POST", "CommitImageUpload", [("ServiceId", self.bucket)], body.encode())

    def _put(
        self, url: str, auth: str, content: Any, crc: int | None, what: str, **extra: str
    ) -> dict[str, Any]:
        headers = {"Authorization": auth, **extra}
        if crc is not None:
            headers["Content-CRC32"] = f"{crc:08x}"
        resp = self.http.put(url, content=content, headers=headers)
        if resp.status_code != 200:
            raise error_from(resp, what)
        try:
            doc: dict[str, Any] = resp.json()
        except ValueError:
            return {}
        return doc

    def _send(self, base: str, auth: str, source: Source, progress: Progress | None) -> None:
        if source.size < CHUNK:
            self._put(base, auth, ChunkReader(source.path, progress), source.crc32, "upload")
            return
        init = self._put(f"{base}?uploads", auth, b"", None, "upload init")
        upload_id = init["payload"]["uploadID"]
        count = source.size // CHUNK
        crcs = []
        for n in range(count):
            start = n * CHUNK
            length = CHUNK if n < count - 1 else source.size - start
            crc = _crc_of(source, start, length)
            reader = ChunkReader(source.path, progress, start=start, length=length)
            self._put(f"{base}?partNumber={n}&uploadID={upload_id}", auth, reader, crc, f"part {n}")
            crcs.append(f"{n}:{crc:08x}")
        self._put(f"{base}?uploadID={upload_id}", auth, ",".join(crcs).encode(), None, "merge")

    def upload(
        self,
        source: Source,
        *,
        key: str | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> UploadResult:
        address = self.apply(key=key, overwrite=overwrite, size=source.size)  # checked before sending
        [info] = address["StoreInfos"]
        uri = info["StoreUri"]
        base = f"{self.scheme}://{address['UploadHosts'][0]}/{uri}"
        self._send(base, info["Auth"], source, progress)
        result = self.commit(address["SessionKey"], [uri])
        name = uri.split("/", 1)[1]
        md5 = next((p.get("ImageMd5") for p in result.get("PluginResult", [])), None) or source.md5
        return UploadResult(
            self.protocol,
            source.label,
            self.bucket,
            name,
            uri,
            f"{self.endpoint}/{self.bucket}/{name}",
            source.size,
            md5,
        )


def _crc_of(source: Source, start: int, length: int) -> int:
    import zlib

    crc = 0
    for block in ChunkReader(source.path, None, start=start, length=length):
        crc = zlib.crc32(block, crc)
    return crc & 0xFFFFFFFF
