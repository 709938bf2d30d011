"""The routing table's rows for the browser: the landing page at ``/`` and the page at ``/ui/``.

``GET /`` without an ``Action`` parameter is the landing page (it says what this server is and
links to the page and the API docs); ``/?Action=…`` stays ImageX's OpenAPI (see
:mod:`mediagate.routing`). ``/ui`` redirects to ``/ui/``; ``/ui/<file>`` is a shipped static file
(:mod:`mediagate.web.assets`) and anything else under ``/ui/`` a JSON 404. Only GET and HEAD are
served; other methods get a JSON 405 with ``Allow``.
"""

from __future__ import annotations

from functools import cache

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mediagate import __version__, serving
from mediagate.web.assets import PAGE_HEADERS, asset_response

READ = ("GET", "HEAD")

LANDING = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mediagate</title>
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/css/app.css">
</head>
<body class="landing">
<main class="landing-main">
<h1>mediagate</h1>
<p class="lead">A self-hosted media upload gateway. Apps let browsers, phones and scripts upload
images, video and files directly to it, authorised by short-lived credentials that the app's own
backend signs; mediagate checks, stores and serves the files, and tells the app what happened.</p>
<p>It speaks the wire dialects of UPYUN, Alibaba Wantu and ByteDance ImageX on this one port, its
own JSON API at <code>/v1</code>, and tus resumable uploads at <code>/v1/tus/</code>.</p>
<nav aria-label="Where to go">
<ul class="landing-links">
<li><a class="button primary" href="/ui/">Open the web page</a>
<span>upload, browse and administer buckets (log in with an API key)</span></li>
<li><a class="button" href="/docs">API documentation</a>
<span>the <code>/v1</code> API (<a href="/openapi.json">OpenAPI schema</a>)</span></li>
<li><a class="button" href="/healthz">Health</a> <span>is the catalog and the store reachable</span></li>
</ul>
</nav>
<p class="muted">An API key comes from <code>mediagate key create --bucket NAME</code> on the
server.</p>
</main>
<footer class="landing-footer">mediagate VERSION</footer>
</body>
</html>
"""


@cache
def _landing_body() -> bytes:
    return LANDING.replace("VERSION", __version__).encode()


def _method_not_allowed() -> Response:
    response = serving.error_response(405, "only GET and HEAD are served here")
    response.headers["Allow"] = "GET, HEAD"
    return response


def wants_landing(request: Request) -> bool:
    """A browser's ``GET /``: no ImageX ``Action`` in the query (the same test as
    :func:`mediagate.frontdoor.face_of`)."""
    return request.method in READ and "Action" not in request.query_params


async def landing(request: Request) -> Response:
    body = _landing_body()
    headers = {**PAGE_HEADERS, "Cache-Control": "no-cache", "Content-Length": str(len(body))}
    return Response(b"" if request.method == "HEAD" else body, media_type="text/html", headers=headers)


async def ui_root(request: Request) -> Response:
    """``/ui`` → ``/ui/``, so that the page's relative URLs resolve under it."""
    if request.method not in READ:
        return _method_not_allowed()
    return RedirectResponse("/ui/", status_code=308)


async def ui_file(request: Request) -> Response:
    if request.method not in READ:
        return _method_not_allowed()
    name: str = request.path_params.get("path", "")
    found = asset_response(request, name)
    if found is None:
        return serving.error_response(404, "no such file in the web page")
    return found
