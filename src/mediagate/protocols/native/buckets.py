"""/v1 buckets: create (server-wide admin key), list, show, change settings, delete; usage."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mediagate.core import admin, webhooks
from mediagate.core.apikeys import ADMIN, READ, require
from mediagate.core.errors import Conflict, Forbidden
from mediagate.http import gateway
from mediagate.protocols.native import schemas
from mediagate.protocols.native.auth import Caller, bucket_for

router = APIRouter(tags=["buckets"])

OPERATOR_SETTINGS = ("inline_active",)
"""Settings only a server-wide admin key changes: ``inline_active`` serves the bucket's HTML and
scripts inline on the server's own origin (that of /docs and the console), where they would act
with whatever key the operator's browser holds; a tenant's own admin key must not decide that."""


@router.get("/v1/buckets", response_model=schemas.BucketList, summary="List buckets")
async def list_buckets(request: Request, key: Caller) -> schemas.BucketList:
    """Every bucket for a server-wide key; its own bucket for a bucket key."""
    found = await admin.buckets(gateway(request))
    visible = [b for b in found if key.can(READ, b.name)]
    return schemas.BucketList(buckets=[schemas.BucketOut.of(b) for b in visible])


@router.post("/v1/buckets", status_code=201, response_model=schemas.BucketCreated, summary="Create a bucket")
async def create_bucket(request: Request, new: schemas.BucketCreate, key: Caller) -> schemas.BucketCreated:
    """Needs a server-wide admin key. The answer carries the bucket's dialect credentials
    (UPYUN, Wantu, ImageX) once."""
    require(key, ADMIN, None)
    settings = new.settings.changes() if new.settings is not None else {}
    if settings.get(webhooks.SETTING) is not None:
        raise Conflict(
            "a new bucket has no webhook secret yet: create the bucket, then its secret "
            "(POST /v1/buckets/{bucket}/webhook-secret), then set webhook_url",
            code="webhook_secret_missing",
        )
    bucket, creds = await admin.new_bucket(gateway(request), new.name, settings)
    out = schemas.BucketOut.of(bucket)
    return schemas.BucketCreated(
        **out.model_dump(),
        credentials=schemas.DialectCredentials(**{k: v for k, v in creds.as_dict().items() if k != "bucket"}),
    )


@router.get("/v1/buckets/{bucket}", response_model=schemas.BucketOut, summary="A bucket and its settings")
async def get_bucket(request: Request, bucket: str, key: Caller) -> schemas.BucketOut:
    return schemas.BucketOut.of(await bucket_for(request, key, bucket, READ))


@router.patch("/v1/buckets/{bucket}", response_model=schemas.BucketOut, summary="Change settings")
async def patch_bucket(
    request: Request, bucket: str, change: schemas.BucketPatch, key: Caller
) -> schemas.BucketOut:
    target = await bucket_for(request, key, bucket, ADMIN)
    gw = gateway(request)
    changes = change.settings.changes()
    named = [name for name in OPERATOR_SETTINGS if name in changes]
    if named and key.bucket is not None:
        raise Forbidden(
            f"{named[0]} is the operator's setting: it needs a server-wide admin key "
            "(or `mediagate bucket inline-active`)",
            code="bucket_forbidden",
        )
    url = changes.get(webhooks.SETTING)
    if url is not None:
        changes[webhooks.SETTING] = await webhooks.check_url(
            url, allow_private=gw.settings.allow_private_callbacks
        )
        await to_thread.run_sync(webhooks.require_secret, gw.catalog, target)
    updated = await admin.change_settings(gw, bucket, changes)
    return schemas.BucketOut.of(updated)


@router.post(
    "/v1/buckets/{bucket}/webhook-secret",
    status_code=201,
    response_model=schemas.WebhookSecret,
    summary="Create or rotate the webhook secret",
    tags=["webhooks"],
)
async def rotate_webhook_secret(request: Request, bucket: str, key: Caller) -> schemas.WebhookSecret:
    """A new secret for verifying ``X-Mediagate-Signature``, in this answer only. The one it
    replaces keeps signing alongside it for 24 hours. Needs ``admin``."""
    target = await bucket_for(request, key, bucket, ADMIN)
    gw = gateway(request)
    secret, until = await to_thread.run_sync(webhooks.rotate_secret, gw.catalog, gw.secrets, target)
    return schemas.WebhookSecret(bucket=bucket, secret=secret, previous_valid_until=until)


@router.delete("/v1/buckets/{bucket}", status_code=204, summary="Delete a bucket")
async def delete_bucket(request: Request, bucket: str, key: Caller, force: bool = False) -> Response:
    """A bucket with objects needs ``force=true`` (everything in it goes)."""
    target = await bucket_for(request, key, bucket, ADMIN)
    await admin.delete_bucket(gateway(request), target, force=force)
    return Response(status_code=204)


@router.get(
    "/v1/buckets/{bucket}/usage", response_model=schemas.Usage, summary="A bucket's usage", tags=["usage"]
)
async def bucket_usage(request: Request, bucket: str, key: Caller) -> schemas.Usage:
    target = await bucket_for(request, key, bucket, READ)
    size, count = await admin.usage(gateway(request), target)
    return schemas.Usage(bucket=bucket, bytes=size, objects=count)


@router.get("/v1/usage", response_model=schemas.UsageList, summary="Usage of every bucket", tags=["usage"])
async def all_usage(request: Request, key: Caller) -> schemas.UsageList:
    gw = gateway(request)
    rows = []
    for b in await admin.buckets(gw):
        if key.can(READ, b.name):
            size, count = await admin.usage(gw, b)
            rows.append(schemas.Usage(bucket=b.name, bytes=size, objects=count))
    return schemas.UsageList(buckets=rows)
