"""The page's static files: shipped in the package, answered with validators, cache rules and the
page's Content Security Policy."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from mediagate.web import assets
from tests.conftest import LiveServer

STATIC = Path(assets.__file__).with_name("static")
SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
"""What turns a string into markup or code: the page's own scripts use none of them."""


def test_every_shipped_file_is_indexed_and_nothing_else() -> None:
    on_disk = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()}
    assert set(assets.index()) == on_disk
    assert {"index.html", "js/app.js", "css/app.css", "vendor/uppy-6.0.1/uppy.min.mjs"} <= on_disk
    assert (STATIC / "vendor" / "uppy-6.0.1" / "LICENSE").read_text().startswith("The MIT License")


def test_the_page_has_no_inline_script_and_no_html_built_from_strings() -> None:
    page = (STATIC / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag, tag
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"
    for path in (STATIC / "js").rglob("*.js"):
        source = path.read_text()
        for sink in SINKS:
            assert sink not in source, f"{path.name} uses {sink}"
        # the key, upload tokens and unfinished uploads live as long as the tab, no longer
        assert "localStorage" not in source.replace("Never localStorage", ""), (
            f"{path.name} uses localStorage"
        )


def test_a_file_is_served_with_its_type_etag_and_cache_rule(server: LiveServer) -> None:
    app = httpx.get(f"{server.url}/ui/js/app.js")
    assert app.status_code == 200
    assert app.headers["content-type"].startswith("text/javascript")
    assert app.headers["cache-control"] == "no-cache"
    assert app.content == (STATIC / "js" / "app.js").read_bytes()
    again = httpx.get(f"{server.url}/ui/js/app.js", headers={"If-None-Match": app.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(f"{server.url}/ui/js/app.js", headers={"If-None-Match": '"other"'}).status_code == 200
    vendored = httpx.head(f"{server.url}/ui/vendor/uppy-6.0.1/uppy.min.css")
    assert vendored.status_code == 200 and vendored.headers["content-type"].startswith("text/css")
    assert "immutable" in vendored.headers["cache-control"]
    size = (STATIC / "vendor/uppy-6.0.1/uppy.min.css").stat().st_size
    assert int(vendored.headers["content-length"]) == size
    licence = httpx.get(f"{server.url}/ui/vendor/uppy-6.0.1/LICENSE")
    assert licence.headers["content-type"].startswith("text/plain") and "MIT" in licence.text


def test_every_page_answer_carries_the_security_headers(server: LiveServer) -> None:
    for path in ("/ui/", "/ui/css/app.css", "/ui/vendor/uppy-6.0.1/uppy.min.mjs"):
        headers = httpx.get(f"{server.url}{path}").headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-eval'" not in csp, path
        assert "script-src 'self' 'unsafe-inline'" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
