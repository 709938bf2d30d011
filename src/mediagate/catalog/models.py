"""Catalog tables. Visibility of an object is a row here; blobs without a row are garbage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is timezone-aware UTC on every backend.

    SQLite has no timezone type and hands back naive datetimes; without this, the same column
    would be aware on PostgreSQL and naive on SQLite, and comparing the two raises. Naive values
    given to us are taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BYTEWISE = "C"
"""The collation of every column that names an object or folder (key, path, dir, name).

Listings merge folders and objects in Python by code point and page with ``name > after``; a
linguistic collation (PostgreSQL on en_US.UTF-8 or ICU) orders ``B`` / ``a`` / ``_x`` differently,
so pages would skip or repeat entries. SQLite compares bytes already (UTF-8 byte order is code point
order), so the collation is PostgreSQL-only."""


def bytewise_string(length: int) -> TypeEngine[str]:
    """A VARCHAR that sorts by code point on every backend (see :data:`BYTEWISE`)."""
    return String(length).with_variant(String(length, collation=BYTEWISE), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Bucket(Base):
    __tablename__ = "buckets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Per-bucket options: cors_origins, public, versions, normalise …"""


class Credential(Base):
    """A secret of a bucket. ``kind``: 'upyun' (operator, md5(password)), 'form' (form API
    secret), 'aksk' (access key id, secret access key). Secrets are sealed (see core.secrets);
    revoked keys keep their row so tokens minted from them can be refused."""

    __tablename__ = "credentials"
    __table_args__ = (
        Index("ix_credentials_lookup", "kind", "key_id"),
        # a bucket's secrets of one kind, newest first: what every authorised request reads
        Index("ix_credentials_bucket_kind", "bucket_id", "kind", "id"),
        # An access key id names one bucket for good (revoked ones too: their tokens are refused
        # by that bucket, never accepted by another). Operators and form secrets are per bucket.
        Index(
            "uq_credentials_access_key",
            "key_id",
            unique=True,
            sqlite_where=text("kind = 'aksk'"),
            postgresql_where=text("kind = 'aksk'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(128))
    sealed_secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Object(Base):
    __tablename__ = "objects"
    __table_args__ = (
        UniqueConstraint("bucket_id", "key", name="uq_objects_bucket_key"),
        # a folder's listing in name order; the expiry rides along so that counting a folder and
        # walking to a page (Wantu's page numbers) never reads the table (see Catalog.objects_in)
        Index("ix_objects_dir_live", "bucket_id", "dir", "name", "expires_at"),
        # the collector's "what has expired": only the few rows with a ttl are in it
        Index(
            "ix_objects_expiring",
            "expires_at",
            sqlite_where=text("expires_at IS NOT NULL"),
            postgresql_where=text("expires_at IS NOT NULL"),
        ),
        # a bucket's uploads newest first (/v1 ``order=newest``, the page's recent uploads),
        # keyset-paged by (created_at, id)
        Index("ix_objects_recent", "bucket_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(bytewise_string(1024))
    dir: Mapped[str] = mapped_column(bytewise_string(1024))
    name: Mapped[str] = mapped_column(bytewise_string(1024))
    blob_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    crc32: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str] = mapped_column(String(255))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frames: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (
        UniqueConstraint("bucket_id", "path", name="uq_folders_bucket_path"),
        Index("ix_folders_dir", "bucket_id", "dir", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(bytewise_string(1024))
    dir: Mapped[str] = mapped_column(bytewise_string(1024))
    name: Mapped[str] = mapped_column(bytewise_string(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UploadSession(Base):
    """A multi-part upload in progress (UPYUN multi, Wantu blocks, ImageX chunks).

    Lives in the catalog so that the next part may land on another process or after a restart."""

    __tablename__ = "upload_sessions"
    __table_args__ = (
        # the collector's "what has expired": only sessions with an expiry are in it
        Index(
            "ix_upload_sessions_expiring",
            "expires_at",
            sqlite_where=text("expires_at IS NOT NULL"),
            postgresql_where=text("expires_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), index=True)
    dialect: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16), default="open")
    total_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    part_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Dialect-specific state (the grant's fields, headers to apply on completion …)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When the dialect's own credentials for the session expire (ImageX: the apply's hour): the
    collector ends it then, whatever ``session_max_age_seconds`` says. None: by its age only."""


class UploadPart(Base):
    __tablename__ = "upload_parts"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str] = mapped_column(String(32))
    crc32: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Delivery(Base):
    """An outgoing notification (notify-url …) waiting to be delivered, retried with backoff."""

    __tablename__ = "deliveries"
    __table_args__ = (  # `mediagate notify list`, newest first, by bucket or by status
        Index("ix_deliveries_bucket_recent", "bucket_id", "id"),
        Index("ix_deliveries_state_recent", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8), default="POST")
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    bucket_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    """The bucket whose upload or task owes it (``mediagate notify list --bucket``); no foreign key:
    a notification outlives a deleted bucket until it is pruned."""
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The HTTP status of the last answer (None before one, or when there was no answer)."""
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    signing: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """How each attempt is signed when it is sent (``"webhook"``: core.webhooks, with the bucket's
    webhook secret and the time of sending); None: the stored headers already carry any signature."""


class DeliveryAttempt(Base):
    """One try of a delivery: when, the HTTP answer or the error. Written in the transaction that
    records the try on its Delivery; only the newest :data:`ATTEMPTS_KEPT` of a delivery are
    kept, and they go with it (``ON DELETE CASCADE``) when it is pruned."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    """The delivery's attempt count after this try (a redelivery starts counting again at 1)."""
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


ATTEMPTS_KEPT = 20
"""Attempts kept per delivery: enough to read a retry schedule, bounded however often it is
redelivered."""


class GarbageBlob(Base):
    """A blob to delete once no longer referenced (old version after overwrite, cancelled part).

    Deleting after the catalog commit, and via this table, means a crash never deletes a blob that
    a committed row still points to, and never forgets one that nothing points to."""

    __tablename__ = "garbage_blobs"

    blob_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Set on an upload's reservation (recorded before its blob is stored): the blob is not
    collected before then, however short the grace, while its upload may still commit it."""


class SignatureUse(Base):
    """A request signature seen recently, and the method it came with (Wantu manage tokens sign no
    method, so a captured GET must not become a DELETE). One row per signature, shared by every
    node; a row is dropped once ``expires_at`` (the signed Date plus the allowed skew) has passed,
    when the signature could no longer be accepted anyway."""

    __tablename__ = "signature_uses"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 hex of the access key and signature (the signature itself is never stored)."""
    method: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Task(Base):
    """An asynchronous media task (UPYUN ``apps`` …). The row is the queue's source of truth: the
    engine (core ``mediagate.tasks``) only carries task ids; status, attempts and the lease live
    here, so a crash of any process or of Redis loses nothing. Inserted in the same transaction as
    the upload that asks for it (core.outbox)."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_due", "status", "next_run_at"),
        # `mediagate task list`, newest first: all, by bucket or by status
        Index("ix_tasks_recent", "created_at", "id"),
        Index("ix_tasks_bucket_recent", "bucket_id", "created_at", "id"),
        Index("ix_tasks_status_recent", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    dialect: Mapped[str] = mapped_column(String(16))
    """Whose shape and signature the result notification takes (``upyun`` …)."""
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(bytewise_string(1024))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | running | done | failed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Pending: handed to the engine until then. Running: the worker's heartbeat lease."""
    outputs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    notify_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Feedback(Base):
    """One Wantu ``/3.0/feedback`` item: the customer's verdict on a scanPorn result, kept so
    that an operator can list it (``GET /3.0/feedback``) and review the model's mistakes."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_bucket_recent", "bucket_id", "id"),)  # GET /3.0/feedback

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(bytewise_string(1024))
    type: Mapped[int] = mapped_column(Integer)
    wrong: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A key for mediagate's own ``/v1`` API (core.apikeys): bound to one bucket, or server-wide
    when ``bucket_id`` is None. Only a hash of the secret is kept; revoked keys keep their row, and
    the upload tokens they issued stop working with them."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    bucket_id: Mapped[int | None] = mapped_column(
        ForeignKey("buckets.id", ondelete="CASCADE"), nullable=True, index=True
    )
    scopes: Mapped[str] = mapped_column(String(64))
    """Comma-separated: read, write, admin."""
    label: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UploadToken(Base):
    """A short-lived upload token (core.uploadtokens) issued by an API key for one bucket: N uses,
    a key prefix or fixed key, a size and content types. ``uses`` only grows by a conditional
    UPDATE, so two nodes never spend the same last use."""

    __tablename__ = "upload_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(bytewise_string(1024), default="")
    fixed_key: Mapped[str | None] = mapped_column(bytewise_string(1024), nullable=True)
    max_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    content_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    notify_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Where the uploads it allows are announced (core.webhooks); None: the bucket's webhook."""
    overwrite: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether its uploads may replace an existing object; off, the commit is insert-only."""


class Quota(Base):
    """A bucket's limits and its usage counters (core.quotas), one row per bucket.

    ``bytes_used`` / ``objects_used`` change in the very transaction that commits, replaces,
    renames over or deletes an object, so they never drift from the objects table and an upload's
    quota check is one row, not a SUM over the bucket. They count rows, so an expired object counts
    until the collector removes it. A limit of None is no limit."""

    __tablename__ = "quotas"

    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), primary_key=True)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_objects: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    uploads_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Uploads begun per minute in the whole bucket."""
    key_uploads_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Uploads begun per minute with any one API key of the bucket (/v1)."""
    token_uploads_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Uploads begun per minute with any one upload token of the bucket (/v1, tus)."""
    bytes_used: Mapped[int] = mapped_column(BigInteger, default=0)
    objects_used: Mapped[int] = mapped_column(BigInteger, default=0)


class TextRule(Base):
    """One of a bucket's ``textjudge`` rules: a listed word (matched case- and width-insensitively)
    or a regular expression, and the label a match gives (1 spam, 2 suspicious). Managed with
    ``mediagate bucket textjudge``; read by the textjudge task (media.textjudge)."""

    __tablename__ = "text_rules"
    __table_args__ = (UniqueConstraint("bucket_id", "kind", "pattern", name="uq_text_rules_pattern"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("buckets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    """``word`` | ``regex``."""
    pattern: Mapped[str] = mapped_column(String(512))
    label: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
