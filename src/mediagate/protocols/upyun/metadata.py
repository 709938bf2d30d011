"""``PATCH /<bucket>/<path>?metadata=merge|replace|delete``: change a file's ``x-upyun-meta-*``.

The node SDK's ``updateMetadata`` and the go SDK's ``ModifyMetadata`` send it; the answer is an
empty 200. The request's ``x-upyun-meta-<name>`` headers say what changes:

* ``merge`` (the SDKs' default): set the given names, keep the others;
* ``replace``: the given names become the whole metadata;
* ``delete``: remove the given names (their values are ignored).

``ttl`` (days) is metadata that also sets the file's expiry, counted from now; removing it (by
``delete`` or a ``replace`` without it) makes the file permanent again. The metadata is stored
in the catalog and returned as ``x-upyun-meta-*`` headers by ``HEAD`` and ``GET``, so the
result must stay within what clients read back (core.usermeta): merges that pile up more are
refused (400, code 40000013), and the file keeps its metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mediagate.core.errors import BadRequest
from mediagate.core.gateway import Gateway
from mediagate.core.keys import existing_key
from mediagate.core.values import Bucket
from mediagate.protocols.upyun.objects import read_meta, ttl_of

OPERATIONS = ("merge", "replace", "delete")
TTL = "ttl"


async def patch(request: Request, gw: Gateway, bucket: Bucket, path: str) -> Response:
    operation = request.query_params.get("metadata")
    if operation not in OPERATIONS:
        raise BadRequest("PATCH changes metadata: add ?metadata=merge, ?metadata=replace or ?metadata=delete")
    given = read_meta(request.headers)
    if path.endswith("/") or not path.strip("/"):
        raise BadRequest("metadata belongs to files: name a file, not a folder")
    plan, set_expiry, expires_in = _plan(operation, given)
    await gw.edit_meta(bucket, existing_key(path), plan, set_expiry=set_expiry, expires_in=expires_in)
    return Response(status_code=200)


def _plan(
    operation: str, given: dict[str, str]
) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], bool, int | None]:
    """The edit to apply to the stored metadata, and whether/how it changes the expiry."""
    if operation == "delete":
        return (lambda meta: {k: v for k, v in meta.items() if k not in given}), TTL in given, None
    ttl = ttl_of(given)
    if operation == "replace":
        return (lambda _meta: dict(given)), True, ttl
    return (lambda meta: meta | given), ttl is not None, ttl
