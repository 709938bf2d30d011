"""``/docs`` (Swagger UI) and ``/redoc`` for the /v1 API, from the viewers vendored in the package
(``mediagate/static/apidocs``, see its README for versions and licences): no CDN, no fonts or
validator fetched from elsewhere, so the docs work on a machine with no internet access."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_DIR = Path(__file__).resolve().parent.parent.parent / "static" / "apidocs"
ASSETS_URL = "/docs/assets"
OPENAPI_URL = "/openapi.json"

DOCS_HEADERS = {
    "Content-Security-Policy": "; ".join(
        ["frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'", "object-src 'none'"]
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""The docs pages take an API key ("Authorize", "Try it out"): no other site may frame them (a
click-jacked "Execute" would run with the operator's key) nor learn their address. Their viewers
run inline scripts and styles, so the policy names only what those do not need."""

router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS_DIR, check_dir=True)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="mediagate /v1 API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=OPENAPI_URL,
        title="mediagate /v1 API",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        with_google_fonts=False,
    )
    page.headers.update(DOCS_HEADERS)
    return page
