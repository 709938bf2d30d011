"""/v1 keys and upload tokens: who may call, within the caller's own rights. A bucket admin key
manages its bucket's keys with scopes it holds itself; a server-wide admin key manages all."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Query
from starlette.requests import Request

from mediagate.core import apikeys, uploadtokens, webhooks
from mediagate.core.apikeys import ADMIN, WRITE, ApiKey
from mediagate.core.errors import Forbidden, NotFound
from mediagate.core.gateway import Gateway
from mediagate.http import gateway
from mediagate.protocols.native import schemas
from mediagate.protocols.native.auth import Caller, bucket_for

router = APIRouter(tags=["keys"])


@router.get("/v1/me", response_model=schemas.KeyOut, summary="The calling key")
async def me(key: Caller) -> schemas.KeyOut:
    """Which key this is, its bucket and scopes (a login check for a client)."""
    return schemas.KeyOut.of(key)


@router.get("/v1/keys", response_model=schemas.KeyList, summary="List API keys")
async def list_keys(
    request: Request, key: Caller, bucket: str | None = Query(default=None, max_length=63)
) -> schemas.KeyList:
    """A bucket admin key sees its bucket's keys; a server-wide admin key every key (or one
    bucket's with ``bucket``)."""
    wanted = bucket if bucket is not None else key.bucket
    apikeys.require(key, ADMIN, wanted)
    gw = gateway(request)
    found = await to_thread.run_sync(lambda: apikeys.list_keys(gw.catalog, bucket=wanted))
    return schemas.KeyList(keys=[schemas.KeyOut.of(k) for k in found])


@router.post("/v1/keys", status_code=201, response_model=schemas.KeyCreated, summary="Create an API key")
async def create_key(request: Request, new: schemas.KeyCreate, key: Caller) -> schemas.KeyCreated:
    """A key for ``bucket`` (null: server-wide, needs a server-wide admin key) with at most the
    caller's own scopes. The secret is in this answer only."""
    apikeys.require(key, ADMIN, new.bucket)
    beyond = sorted(set(new.scopes) - key.scopes)
    if beyond:
        raise Forbidden(f"a key cannot grant the {beyond[0]!r} scope it lacks", code="insufficient_scope")
    gw = gateway(request)
    made, secret = await to_thread.run_sync(
        lambda: apikeys.create_key(
            gw.catalog,
            bucket=new.bucket,
            scopes=new.scopes,
            label=new.label,
            max_per_bucket=gw.settings.max_api_keys_per_bucket,
        )
    )
    return schemas.KeyCreated(**schemas.KeyOut.of(made).model_dump(), secret=secret)


@router.delete("/v1/keys/{key_id}", response_model=schemas.KeyOut, summary="Revoke an API key")
async def revoke_key(request: Request, key_id: str, key: Caller) -> schemas.KeyOut:
    """Revoke now; the upload tokens it issued stop working too."""
    gw = gateway(request)
    target = await _visible_key(gw, key, key_id)
    gone = await to_thread.run_sync(apikeys.revoke_key, gw.catalog, target.key_id)
    return schemas.KeyOut.of(gone)


async def _visible_key(gw: Gateway, caller: ApiKey, key_id: str) -> ApiKey:
    """The key ``key_id`` if the caller administers it; another bucket's key is as unknown as a
    made-up id."""
    apikeys.require(caller, ADMIN, caller.bucket)
    try:
        target: ApiKey | None = await to_thread.run_sync(apikeys.get_key, gw.catalog, key_id)
    except NotFound:
        target = None
    if target is None or (caller.bucket is not None and caller.bucket != target.bucket):
        raise NotFound(f"there is no API key {key_id!r}", code="key_not_found")
    return target


# -- upload tokens -----------------------------------------------------------------------------------


@router.post(
    "/v1/buckets/{bucket}/upload-tokens",
    status_code=201,
    response_model=schemas.UploadTokenCreated,
    summary="Issue an upload token",
    tags=["upload tokens"],
)
async def issue_token(
    request: Request, bucket: str, new: schemas.UploadTokenCreate, key: Caller
) -> schemas.UploadTokenCreated:
    """A short-lived token for a browser or a phone: ``max_uses`` uploads under ``prefix`` (or to
        ``key``), each at most ``max_size`` bytes of ``content_types``. Needs ``write``. With
        ``notify_url`` each upload is announced there (see README "Webhooks"). Its uploads replace an
    existing object only if issued with ``overwrite: true``."""
    await bucket_for(request, key, bucket, WRITE)
    gw = gateway(request)
    notify_url = None
    if new.notify_url is not None:
        notify_url = await webhooks.check_url(
            new.notify_url, allow_private=gw.settings.allow_private_callbacks
        )
    token, secret = await to_thread.run_sync(
        lambda: uploadtokens.issue_upload_token(
            gw.catalog,
            key,
            bucket,
            ttl=new.ttl,
            max_uses=new.max_uses,
            prefix=new.prefix,
            key=new.key,
            max_size=new.max_size,
            content_types=new.content_types,
            notify_url=notify_url,
            overwrite=new.overwrite,
            max_per_bucket=gw.settings.max_upload_tokens_per_bucket,
        )
    )
    return schemas.UploadTokenCreated(**schemas.UploadTokenOut.of(token).model_dump(), token=secret)


@router.get(
    "/v1/buckets/{bucket}/upload-tokens",
    response_model=schemas.UploadTokenList,
    summary="List upload tokens",
    tags=["upload tokens"],
)
async def list_tokens(request: Request, bucket: str, key: Caller) -> schemas.UploadTokenList:
    await bucket_for(request, key, bucket, WRITE)
    gw = gateway(request)
    found = await to_thread.run_sync(uploadtokens.list_upload_tokens, gw.catalog, bucket)
    return schemas.UploadTokenList(upload_tokens=[schemas.UploadTokenOut.of(t) for t in found])


@router.delete(
    "/v1/buckets/{bucket}/upload-tokens/{token_id}",
    response_model=schemas.UploadTokenOut,
    summary="Revoke an upload token",
    tags=["upload tokens"],
)
async def revoke_token(request: Request, bucket: str, token_id: str, key: Caller) -> schemas.UploadTokenOut:
    await bucket_for(request, key, bucket, WRITE)
    gw = gateway(request)
    gone = await to_thread.run_sync(uploadtokens.revoke_upload_token, gw.catalog, bucket, token_id)
    return schemas.UploadTokenOut.of(gone)
