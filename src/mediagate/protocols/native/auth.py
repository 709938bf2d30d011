"""Who is calling /v1: ``Authorization: Bearer <secret>``, an API key (``mgk_…``) everywhere, or an
upload token (``mgt_…``) on the object upload endpoints only. Checked from the headers alone,
before any byte of a body is read."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from mediagate import logs
from mediagate.core import admin, apikeys
from mediagate.core.apikeys import ApiKey
from mediagate.core.errors import Forbidden, Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.core.uploadtokens import is_upload_token
from mediagate.core.values import Bucket
from mediagate.http import gateway

bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`mgk_…`, `mediagate key create`) or, on uploads, an upload token (`mgt_…`).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def bearer_secret(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized(
            "send 'Authorization: Bearer <API key>' (make one with `mediagate key create`)",
            code="missing_credentials",
        )
    return credentials.credentials.strip()


async def authenticate(gw: Gateway, secret: str) -> ApiKey:
    if is_upload_token(secret):
        raise Forbidden(
            "an upload token only authorises uploading an object; use an API key here",
            code="upload_token_not_allowed",
        )
    key = await to_thread.run_sync(apikeys.authenticate_key, gw.catalog, secret)
    if key.bucket is not None:
        logs.note_bucket(key.bucket)
    return key


async def caller(request: Request, credentials: Credentials) -> ApiKey:
    """The API key of the request (a FastAPI dependency)."""
    return await authenticate(gateway(request), bearer_secret(credentials))


Caller = Annotated[ApiKey, Depends(caller)]


async def bucket_for(request: Request, key: ApiKey, name: str, scope: str) -> Bucket:
    """The bucket ``name`` once ``key`` may act on it with ``scope`` (403 before 404, so a
    bucket-bound key learns nothing about other buckets)."""
    apikeys.require(key, scope, name)
    return await admin.bucket(gateway(request), name)
