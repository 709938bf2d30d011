"""Who may write: ``Authorization: Bearer <upload token>`` (``mgt_…``), checked by the core's
upload tokens (:mod:`mediagate.core.uploadtokens`) before any byte of a body is read."""

from __future__ import annotations

from dataclasses import replace

from anyio import to_thread
from starlette.requests import Request

from mediagate.core import uploadtokens
from mediagate.core.errors import Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.core.uploadtokens import TokenGrant


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <upload token>", code="missing_credentials")
    return token.strip()


async def create(
    gw: Gateway,
    request: Request,
    bucket: str,
    *,
    filename: str | None,
    size: int | None,
    content_type: str | None,
) -> TokenGrant:
    """Check the token for a new upload and take one of its uses."""
    token = bearer(request)
    return await to_thread.run_sync(
        lambda: uploadtokens.check_upload_token(
            gw.catalog,
            token,
            bucket=bucket,
            filename=filename,
            size=size,
            content_type=content_type,
            consume=True,
        )
    )


async def resume(gw: Gateway, request: Request, bucket: str, key: str) -> TokenGrant:
    """Check the token on a request to an existing upload: genuine, not revoked, of this bucket
    (its expiry and uses were checked when the upload was created)."""
    token = bearer(request)
    return await to_thread.run_sync(
        lambda: uploadtokens.check_upload_token(gw.catalog, token, bucket=bucket, key=key, consume=False)
    )


async def give_back(gw: Gateway, grant: TokenGrant) -> None:
    """Return the use an upload took at its creation when it leaves no object (refused, or
    terminated); ``grant`` may be the later, unconsuming check of the same token."""
    await to_thread.run_sync(uploadtokens.release_upload_token, gw.catalog, replace(grant, consumed=True))
