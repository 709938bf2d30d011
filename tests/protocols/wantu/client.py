"""A Wantu client written from the seed document alone (wantu-media-api.txt), not from mediagate.

It signs its own tokens (upload: ``UPLOAD_AK_TOP urlsafe_b64(AK:encodedPolicy:hmac_sha1_hex)``;
manage: ``ACL_TOP urlsafe_b64(AK:hmac_sha1_hex(path?query\\nbody\\ndate))``), builds the multipart
bodies the way the seed's examples show them (text parts with ``text/plain; charset=UTF-8`` and
``Content-Transfer-Encoding: 8bit``, the file part ``content`` last) and PUTs them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hmac_sha1(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha1).hexdigest()


def encoded_policy(policy: dict[str, Any]) -> str:
    return b64(json.dumps(policy, separators=(",", ":"), ensure_ascii=False))


def upload_token(ak: str, sk: str, policy: dict[str, Any] | str) -> str:
    encoded = policy if isinstance(policy, str) else encoded_policy(policy)
    return b64(f"{ak}:{encoded}:{hmac_sha1(sk, encoded)}")


def resource_id(namespace: str, dir: str, name: str | None = None) -> str:
    items = [namespace, dir] if name is None else [namespace, dir, name]
    return b64(json.dumps(items, ensure_ascii=False, separators=(",", ":")))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart(
    fields: Iterable[tuple[str, str]],
    content: bytes | None = None,
    *,
    filename: str = "content",
    content_type: str = "application/octet-stream",
) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        out += value.encode() + b"\r\n"
    if content is not None:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        ).encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class WantuClient:
    def __init__(self, base_url: str, ak: str, sk: str, namespace: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.ak, self.sk, self.namespace = ak, sk, namespace
        self._last_ms = 0

    def close(self) -> None:
        self.http.close()

    # -- upload ------------------------------------------------------------------------------------

    def policy(self, **fields: Any) -> dict[str, Any]:
        return {"namespace": self.namespace, "expiration": int(time.time() * 1000) + 3600_000} | fields

    def authorization(self, policy: dict[str, Any] | None = None, **fields: Any) -> str:
        return "UPLOAD_AK_TOP " + upload_token(self.ak, self.sk, policy or self.policy(**fields))

    def send(
        self,
        endpoint: str,
        fields: Iterable[tuple[str, str]],
        content: bytes | None = None,
        *,
        authorization: str | None,
        method: str = "PUT",
        filename: str = "content",
        content_type: str = "application/octet-stream",
    ) -> httpx.Response:
        body, ctype = multipart(fields, content, filename=filename, content_type=content_type)
        headers = {"Content-Type": ctype}
        if authorization is not None:
            headers["Authorization"] = authorization
        return self.http.request(method, f"/api/proxy/{endpoint}", content=body, headers=headers)

    def upload(
        self,
        content: bytes,
        *,
        policy: dict[str, Any] | None = None,
        fields: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        form = dict(fields or {})
        return self.send("upload", form.items(), content, authorization=self.authorization(policy), **kw)

    def block_init(self, block: bytes, auth: str, fields: dict[str, str] | None = None) -> httpx.Response:
        form = {"size": str(len(block)), "md5": md5(block)} | (fields or {})
        return self.send("blockInit", form.items(), block, authorization=auth)

    def block_upload(
        self,
        block: bytes,
        auth: str,
        upload_id: str,
        id_: str,
        number: int,
        extra: dict[str, str] | None = None,
    ) -> httpx.Response:
        form = {"size": str(len(block)), "id": id_, "uploadId": upload_id, "partNumber": str(number)}
        form |= {"md5": md5(block)} | (extra or {})
        return self.send("blockUpload", form.items(), block, authorization=auth)

    def block_complete(
        self, auth: str, upload_id: str, id_: str, parts: list[tuple[int, str]] | str, whole_md5: str
    ) -> httpx.Response:
        encoded = (
            parts
            if isinstance(parts, str)
            else b64(json.dumps([{"eTag": e, "partNumber": str(n)} for n, e in parts], separators=(",", ":")))
        )
        form = {"id": id_, "uploadId": upload_id, "md5": whole_md5, "parts": encoded}
        return self.send("blockComplete", form.items(), authorization=auth)

    def block_cancel(self, auth: str, upload_id: str, id_: str) -> httpx.Response:
        return self.send("blockCancel", {"id": id_, "uploadId": upload_id}.items(), authorization=auth)

    # -- management -----------------------------------------------------------------------------------

    def manage(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: str = "",
        date: str | None = None,
        sign_path: str | None = None,
        sk: str | None = None,
    ) -> httpx.Response:
        date = date or self.fresh_date()
        target = path + (f"?{query}" if query else "")
        to_sign = f"{sign_path or target}\n{body}\n{date}"
        token = b64(f"{self.ak}:{hmac_sha1(sk or self.sk, to_sign)}")
        headers = {"Authorization": f"ACL_TOP {token}", "Date": date}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.http.request(method, target, content=body.encode() or None, headers=headers)

    def fresh_date(self) -> str:
        """Epoch milliseconds (the seed's example and the PHP SDK's form), never the same twice:
        the server refuses a signature it saw with another method, and a GET and a DELETE of one
        resource signed in the same second would have the same signature."""
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return str(self._last_ms)

    def file_rid(self, dir: str, name: str, namespace: str | None = None) -> str:
        return resource_id(self.namespace if namespace is None else namespace, dir, name)

    def folder_rid(self, dir: str, namespace: str | None = None) -> str:
        return resource_id(self.namespace if namespace is None else namespace, dir)
