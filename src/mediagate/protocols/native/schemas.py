"""The /v1 API's typed request and response bodies (its OpenAPI components)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mediagate.bucketconf import check_version, normalise_origin
from mediagate.core.apikeys import ApiKey
from mediagate.core.errors import MediagateError
from mediagate.core.notify import is_http_url
from mediagate.core.uploadtokens import MAX_SIZE, UploadToken
from mediagate.core.values import Bucket, Object


class Strict(BaseModel):
    """A request body: no unknown fields, and only Unicode text (see :func:`_unicode_only`)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        _unicode_only(data)
        return data


def _unicode_only(value: Any, depth: int = 0) -> None:
    """Refuse a lone surrogate or a NUL anywhere in a JSON body (``"\\ud800"`` is valid JSON
    but no text): pydantic lets them through inside lists and dicts, the catalog stored them, and
    every answer that carried one then failed to encode (or PostgreSQL refused the NUL)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (a lone surrogate is not)") from None
        if "\x00" in value:  # PostgreSQL cannot store it; no header or key can carry it
            raise ValueError("text may not contain the NUL character")
    elif isinstance(value, dict) and depth < 32:
        for key, item in value.items():
            _unicode_only(key, depth + 1)
            _unicode_only(item, depth + 1)
    elif isinstance(value, list) and depth < 32:
        for item in value:
            _unicode_only(item, depth + 1)


# -- errors ------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. insufficient_scope.")
    message: str = Field(description="What went wrong and what to do, safe to show.")
    request_id: str
    details: list[dict[str, Any]] | None = None


class Error(BaseModel):
    error: ErrorDetail


class ApiIndex(BaseModel):
    name: str
    version: str
    openapi: str
    docs: str


# -- buckets -----------------------------------------------------------------------------------------


class NormaliseSettings(Strict):
    enabled: bool = True
    auto_orient: bool = True
    strip: bool = False
    heic_to: Literal["jpg", "avif"] | None = None
    format: Literal["webp", "avif", "jpg"] | None = None
    quality: Annotated[int, Field(ge=1, le=100)] | None = None
    max_side: Annotated[int, Field(gt=0, le=100_000)] | None = None


class BucketSettings(Strict):
    """Per-bucket serving and ingest options (see ``mediagate.bucketconf``). In a PATCH, a field
    left out is kept and a field set to null returns to its default."""

    public: bool | None = None
    cors_origins: list[str] | None = Field(default=None, max_length=100)
    cors_max_age: Annotated[int, Field(ge=0, le=86_400 * 365)] | None = None
    autoformat: Literal["webp", "avif", False] | None = None
    inline_active: bool | None = Field(
        default=None,
        description="Serve HTML, SVG, XML and JS inline on this server's origin; changed only with "
        "a server-wide admin key.",
    )
    versions: dict[str, str] | None = Field(default=None, max_length=100)
    normalise: NormaliseSettings | None = None
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where /v1 and tus uploads (without a token notify_url) and /v1 deletes are "
        "announced, signed with the bucket's webhook secret (create it first). See README 'Webhooks'.",
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value.strip()):
            raise ValueError("webhook_url must be an absolute http:// or https:// URL")
        return value.strip() if value is not None else None

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return list(dict.fromkeys(_checked(normalise_origin, o) for o in value))

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        return dict(_checked(lambda pair: check_version(*pair), item) for item in value.items())

    def changes(self) -> dict[str, Any]:
        """Only the fields the request named (null included), as stored."""
        return {name: _stored(getattr(self, name)) for name in self.model_fields_set}


def _checked(check: Any, value: Any) -> Any:
    """A core check's BadRequest as a validation error (a 400 ``invalid_request`` with details)."""
    try:
        return check(value)
    except MediagateError as exc:
        raise ValueError(exc.message) from None
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _stored(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


class BucketCreate(Strict):
    name: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
    settings: BucketSettings | None = None


class BucketPatch(Strict):
    settings: BucketSettings


class BucketOut(BaseModel):
    name: str
    created_at: datetime
    settings: dict[str, Any]

    @classmethod
    def of(cls, bucket: Bucket) -> BucketOut:
        return cls(name=bucket.name, created_at=bucket.created_at, settings=dict(bucket.settings or {}))


class DialectCredentials(BaseModel):
    operator: str
    password: str
    form_api_secret: str
    access_key_id: str
    secret_access_key: str


class BucketCreated(BucketOut):
    credentials: DialectCredentials = Field(description="The dialects' credentials, shown once.")


class BucketList(BaseModel):
    buckets: list[BucketOut]


class Usage(BaseModel):
    bucket: str
    bytes: int
    objects: int


class UsageList(BaseModel):
    buckets: list[Usage]


# -- objects -----------------------------------------------------------------------------------------


class ObjectOut(BaseModel):
    bucket: str
    key: str
    size: int
    mime: str
    md5: str
    sha256: str
    crc32: int
    width: int | None
    height: int | None
    frames: int | None
    meta: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    url: str = Field(description="The public read path (GET /<bucket>/<key>).")

    @classmethod
    def of(cls, bucket: str, obj: Object) -> ObjectOut:
        return cls(
            bucket=bucket,
            key=obj.key,
            size=obj.size,
            mime=obj.mime,
            md5=obj.md5,
            sha256=obj.sha256,
            crc32=obj.crc32,
            width=obj.width,
            height=obj.height,
            frames=obj.frames,
            meta=dict(obj.meta or {}),
            created_at=obj.created_at,
            expires_at=obj.expires_at,
            url=f"/{bucket}/{quote(obj.key)}",
        )


class ObjectList(BaseModel):
    objects: list[ObjectOut]
    folders: list[str] = Field(
        default_factory=list,
        description="With delimiter=/: the folders directly under the prefix, each ending in '/'.",
    )
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class ObjectPatch(Strict):
    meta: dict[str, str] = Field(max_length=100, description="Replaces the object's user metadata.")


class Transfer(Strict):
    source: str = Field(min_length=1, max_length=1024)
    destination: str = Field(min_length=1, max_length=1024)
    overwrite: bool = True


# -- keys and upload tokens --------------------------------------------------------------------------

Scope = Literal["read", "write", "admin"]


class KeyOut(BaseModel):
    key_id: str
    bucket: str | None = Field(description="null: a server-wide key.")
    scopes: list[Scope]
    label: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            key_id=key.key_id,
            bucket=key.bucket,
            scopes=key.sorted_scopes(),
            label=key.label,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class KeyCreated(KeyOut):
    secret: str = Field(description="Authorization: Bearer <secret>; shown once.")


class KeyCreate(Strict):
    bucket: str | None = Field(default=None, max_length=63, description="null: a server-wide key.")
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    label: str = Field(default="", max_length=200)


class KeyList(BaseModel):
    keys: list[KeyOut]


class UploadTokenCreate(Strict):
    ttl: int = Field(default=900, ge=1, le=86_400, description="Seconds the token is valid.")
    max_uses: int = Field(default=1, ge=1, le=10_000)
    prefix: str = Field(default="", max_length=1000, description="Keys must start with this.")
    key: str | None = Field(default=None, max_length=1024, description="Or exactly this key.")
    max_size: int | None = Field(default=None, ge=0, le=MAX_SIZE, description="Bytes per upload.")
    content_types: list[str] = Field(default_factory=list, max_length=50, description="e.g. image/*")
    notify_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Webhook for this token's uploads (instead of the bucket's), signed with the "
        "bucket's webhook secret. Refused now if the server would refuse to call it.",
    )
    overwrite: bool = Field(
        default=False,
        description="Whether uploads with this token may replace an existing object. Off (the "
        "default), an upload to a key that exists is refused with 409 key_exists.",
    )


class UploadTokenOut(BaseModel):
    token_id: str
    bucket: str
    key_id: str
    prefix: str
    key: str | None
    max_size: int | None
    content_types: list[str]
    max_uses: int
    uses: int
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None
    notify_url: str | None = None
    overwrite: bool = False

    @classmethod
    def of(cls, token: UploadToken) -> UploadTokenOut:
        return cls(
            token_id=token.token_id,
            bucket=token.bucket,
            key_id=token.key_id,
            prefix=token.prefix,
            key=token.fixed_key,
            max_size=token.max_size,
            content_types=list(token.content_types),
            max_uses=token.max_uses,
            uses=token.uses,
            expires_at=token.expires_at,
            created_at=token.created_at,
            revoked_at=token.revoked_at,
            notify_url=token.notify_url,
            overwrite=token.overwrite,
        )


class UploadTokenCreated(UploadTokenOut):
    token: str = Field(description="Authorization: Bearer <token> on an upload; shown once.")


class UploadTokenList(BaseModel):
    upload_tokens: list[UploadTokenOut]


class WebhookSecret(BaseModel):
    bucket: str
    secret: str = Field(description="Verifies X-Mediagate-Signature; shown once.")
    previous_valid_until: datetime | None = Field(
        description="Until then the secret this one replaced also signs (a second v1=); null: none."
    )


# -- tasks and notifications -------------------------------------------------------------------------


class TaskOut(BaseModel):
    id: str
    status: str
    kind: str
    dialect: str
    bucket: str
    source: str
    outputs: list[str]
    attempts: int
    max_attempts: int
    reason: str | None
    params: dict[str, Any]
    result: dict[str, Any]
    notify_url: str | None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None
    finished_at: datetime | None


class TaskList(BaseModel):
    tasks: list[TaskOut]


class DeliveryAttemptOut(BaseModel):
    attempt: int = Field(description="The attempt's number (a redelivery counts from 1 again).")
    at: datetime
    ok: bool
    status_code: int | None = Field(description="The HTTP status answered; null if none came.")
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    status: str
    bucket: str | None
    url: str
    method: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    headers: list[str] = Field(description="Header names only; values carry signatures.")
    history: list[DeliveryAttemptOut] | None = Field(
        default=None,
        description="The kept tries, newest first (at most 20); in GET /v1/deliveries/{id} only.",
    )


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
