"""What every dialect adapter shares: the result, errors, keys."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from mediagate.client.sources import Source


class UploadError(Exception):
    """The server refused an upload; ``status``/``code``/``message`` come from its answer."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ObjectExists(UploadError):
    """The key is taken and the upload did not ask to replace it (nothing was changed)."""


EXISTS_CODES = frozenset({"40900002", "NameDuplicated", "ResourceAlreadyExists"})
"""How each dialect says 'that key is taken': UPYUN ``key_exists``, Wantu, ImageX."""


@dataclass(frozen=True)
class UploadResult:
    protocol: str
    source: str
    bucket: str
    key: str
    uri: str
    """How the dialect names the object (ImageX ``tos-cn-i-…``, else ``/<bucket>/<key>``)."""
    url: str
    size: int
    md5: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_from(resp: httpx.Response, what: str) -> UploadError:
    """An UploadError carrying whatever code/message the dialect's error body holds."""
    code = message = None
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        err = (body.get("ResponseMetadata") or {}).get("Error") if "ResponseMetadata" in body else None
        if isinstance(err, dict):
            code, message = err.get("Code"), err.get("Message")
        else:
            code = body.get("code") or body.get("ret")
            message = body.get("message") or body.get("msg") or body.get("errmsg")
    text = message or resp.text[:300] or resp.reason_phrase
    kind = ObjectExists if str(code) in EXISTS_CODES else UploadError
    return kind(
        f"{what}: HTTP {resp.status_code} {code or ''} {text}".replace("  ", " "),
        status=resp.status_code,
        code=str(code) if code is not None else None,
    )


def upload_key(key: str | None, source: Source) -> str:
    """The key an upload goes to: the one asked for, else the content's MD5 with the file's
    extension (lower-cased, up to 9 letters); never with a leading slash."""
    return (key or f"{source.md5}{_ext(source.filename)}").lstrip("/")


def _ext(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if 0 < dot < len(filename) - 1 and len(filename) - dot <= 10 else ""
