"""What the core hands the dialects: small frozen values, never the catalog's rows.

The catalog's ORM rows (``catalog.models``) are its own business: it may read them through the ORM,
a raw DB-API cursor or anything else, and change how it locks on PostgreSQL, without a dialect
noticing. The gateway converts at its edge (``X.of(row)``); dialects import these types from here
(tests/test_architecture.py checks that no protocol module imports ``mediagate.catalog``). The fields
are those of the tables a dialect reads; a dialect that needs one more asks for it here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

_field_names: dict[type, tuple[str, ...]] = {}


class _FromRow:
    @classmethod
    def of(cls, row: Any) -> Self:
        """The value of a catalog row (any object with these attribute names)."""
        names = _field_names.get(cls)
        if names is None:
            names = _field_names[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        return cls(**{name: getattr(row, name) for name in names})


@dataclass(frozen=True)
class Bucket(_FromRow):
    id: int
    name: str
    created_at: datetime
    settings: dict[str, Any]
    """Per-bucket options: cors_origins, public, versions, normalise …"""


@dataclass(frozen=True)
class Object(_FromRow):
    """A committed object (what a key names); ``id`` is None before its commit."""

    id: int | None
    bucket_id: int
    key: str
    dir: str
    name: str
    blob_id: str
    size: int
    md5: str
    sha256: str
    crc32: int
    mime: str
    width: int | None
    height: int | None
    frames: int | None
    image_type: str | None
    meta: dict[str, Any]
    content_secret: str | None
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Folder(_FromRow):
    """A folder; ``path`` '' is the bucket root (which always exists and has no row)."""

    id: int | None
    bucket_id: int
    path: str
    dir: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class UploadSession(_FromRow):
    """A multi-part upload in progress (UPYUN multi-part, Wantu blocks, ImageX chunks)."""

    id: str
    bucket_id: int
    dialect: str
    key: str
    state: str
    total_size: int | None
    part_size: int | None
    data: dict[str, Any]
    """Dialect-specific state (the grant's fields, headers to apply on completion …)."""
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class UploadPart(_FromRow):
    session_id: str
    part_number: int
    blob_id: str
    size: int
    md5: str
    crc32: int
    created_at: datetime | None


@dataclass(frozen=True)
class Task(_FromRow):
    """An asynchronous media task, as its dialect reports it."""

    id: str
    kind: str
    dialect: str
    bucket_id: int
    source: str
    params: dict[str, Any]
    status: str
    """pending | running | done | failed."""
    attempts: int
    max_attempts: int
    next_run_at: datetime
    lease_until: datetime | None
    outputs: list[Any]
    result: dict[str, Any]
    reason: str | None
    notify_url: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Feedback(_FromRow):
    """One Wantu ``/3.0/feedback`` verdict on a scan result."""

    id: int | None
    bucket_id: int
    key: str
    type: int
    wrong: bool
    score: float | None
    created_at: datetime


@dataclass(frozen=True)
class Delivery(_FromRow):
    """An outgoing notification as the API shows it: where it goes and how it went (never its
    body: ``core.deliveryview`` shows header names only)."""

    id: int
    url: str
    method: str
    headers: dict[str, Any]
    attempts: int
    state: str
    """pending | delivered | failed."""
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    bucket_id: int | None
    last_status: int | None
    delivered_at: datetime | None
    signing: str | None


@dataclass(frozen=True)
class DeliveryAttempt(_FromRow):
    """One kept try of a delivery: when, and the HTTP answer or the error."""

    number: int
    """The delivery's attempt count after this try (a redelivery starts counting again at 1)."""
    at: datetime
    ok: bool
    status: int | None
    error: str | None


@dataclass(frozen=True)
class DirEntry:
    """One entry of a directory listing (a folder or an object)."""

    name: str
    is_folder: bool
    size: int
    mtime: datetime
    mime: str | None = None
