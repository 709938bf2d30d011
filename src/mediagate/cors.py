"""CORS for bucket paths, configured per bucket (see :mod:`mediagate.bucketconf`).

Default: every origin (``*``) may read *and* upload, because uploading straight from the browser
is what mediagate is for; ``mediagate bucket cors set NAME --origin https://app.example`` narrows
it. Rules:

* Simple/actual responses (``decorate``): when the request's ``Origin`` is allowed, add
  ``Access-Control-Allow-Origin`` (``*`` when the bucket allows every origin, else the origin
  echoed, with ``Vary: Origin``) and ``Access-Control-Expose-Headers`` listing what browser
  clients read (ETag, Location, Content-Range, X-Request-Id, the UPYUN ``x-upyun-*`` headers …).
  An origin not allowed gets no CORS header: the browser then hides the response.
* Preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``): 204 with the
  allowed methods, the requested headers echoed (they include ``Authorization``, which ``*``
  would not cover), and ``Access-Control-Max-Age``. An origin not allowed, or a method we do not
  serve, is a 403 without CORS headers. A plain ``OPTIONS`` (not a preflight) answers 204 with
  ``Allow``.
* An unknown bucket uses the defaults, so that a browser sees the real 404 of the actual request
  instead of an opaque CORS failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from mediagate.bucketconf import BucketConf, bucket_cache, origin_allowed
from mediagate.http import gateway
from mediagate.serving import error_response

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")

EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Content-Length",
    "Content-Range",
    "Content-MD5",
    "Accept-Ranges",
    "Last-Modified",
    "X-Request-Id",
    "x-upyun-width",
    "x-upyun-height",
    "x-upyun-frames",
    "x-upyun-file-type",
    "x-upyun-file-size",
    "x-upyun-file-date",
    "x-upyun-multi-uuid",
    "x-upyun-next-part-id",
    "x-upyun-list-iter",
)

_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")


async def _conf(request: Request, bucket: str) -> BucketConf:
    return await bucket_cache(request.app.state, gateway(request)).conf(bucket)


def _add_vary(response: Response, value: str) -> None:
    current = response.headers.get("vary")
    if current is None:
        response.headers["Vary"] = value
    elif value.lower() not in [v.strip().lower() for v in current.split(",")]:
        response.headers["Vary"] = f"{current}, {value}"


def _allow_origin(response: Response, origin: str, conf: BucketConf) -> None:
    if "*" in conf.cors_origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    else:
        response.headers["Access-Control-Allow-Origin"] = origin
        _add_vary(response, "Origin")


async def decorate(
    request: Request, bucket: str, response: Response, *, exposed: Sequence[str] = EXPOSED_HEADERS
) -> Response:
    """Add the CORS headers of an actual (non-preflight) response; ``exposed`` lists the headers
    browser code may read (a dialect with headers of its own, like tus, passes its list)."""
    conf = await _conf(request, bucket)
    if "*" not in conf.cors_origins:
        _add_vary(response, "Origin")  # caches must not reuse one origin's answer for another
    origin = request.headers.get("origin")
    if not origin or not origin_allowed(origin, conf.cors_origins):
        return response
    _allow_origin(response, origin, conf)
    response.headers["Access-Control-Expose-Headers"] = ", ".join(exposed)
    return response


async def preflight(request: Request, bucket: str, *, methods: Sequence[str] = ALLOWED_METHODS) -> Response:
    """Answer ``OPTIONS /<bucket>[/<path>]`` (or another path serving ``methods``)."""
    origin = request.headers.get("origin")
    method = request.headers.get("access-control-request-method")
    if not origin or not method:
        return Response(status_code=204, headers={"Allow": ", ".join(methods)})
    conf = await _conf(request, bucket)
    vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    if not origin_allowed(origin, conf.cors_origins):
        return error_response(403, f"origin {origin} is not allowed by bucket {bucket!r}", {"Vary": vary})
    if method.strip().upper() not in methods:
        return error_response(403, f"method {method} is not allowed", {"Vary": vary})
    response = Response(status_code=204)
    _allow_origin(response, origin, conf)
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    requested = request.headers.get("access-control-request-headers", "").strip()
    if requested and _HEADER_LIST.match(requested):
        response.headers["Access-Control-Allow-Headers"] = requested
    response.headers["Access-Control-Max-Age"] = str(conf.cors_max_age)
    _add_vary(response, vary)
    return response
