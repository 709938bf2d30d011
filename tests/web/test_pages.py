"""The landing page at ``/`` and the page's rows in the routing table, against a live server.

``GET /`` without ``Action`` is the landing page; ImageX keeps ``/?Action=…`` and every other
method on ``/`` (its own tests in tests/protocols/imagex stay as they were).
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer


def test_the_landing_page_says_what_this_is_and_links_to_the_page_and_the_docs(server: LiveServer) -> None:
    resp = httpx.get(f"{server.url}/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "self-hosted media upload gateway" in resp.text
    assert 'href="/ui/"' in resp.text and 'href="/docs"' in resp.text
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    head = httpx.head(f"{server.url}/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == resp.headers["content-length"]


def test_any_query_without_action_is_still_the_landing_page(server: LiveServer) -> None:
    resp = httpx.get(f"{server.url}/", params={"utm_source": "x"})
    assert resp.status_code == 200 and "mediagate" in resp.text


@pytest.mark.parametrize(
    ("method", "params"),
    [("GET", {"Action": "NoSuchAction", "Version": "2018-08-01"}), ("GET", {"Action": ""}), ("POST", {})],
)
def test_imagex_still_answers_actions_and_other_methods_on_the_root(
    server: LiveServer, method: str, params: dict[str, str]
) -> None:
    resp = httpx.request(method, f"{server.url}/", params=params)
    assert resp.status_code == 404
    assert resp.json()["ResponseMetadata"]["Error"]["Code"] == "InvalidActionOrVersion"


def test_ui_redirects_to_its_folder_and_serves_the_page(server: LiveServer) -> None:
    resp = httpx.get(f"{server.url}/ui")
    assert resp.status_code == 308 and resp.headers["location"] == "/ui/"
    page = httpx.get(f"{server.url}/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js"></script>' in page.text


def test_ui_answers_only_reads_and_unknown_files_are_a_json_404(server: LiveServer) -> None:
    for path in ("/ui/nope.js", "/ui/../healthz", "/ui/%2e%2e/%2e%2e/pyproject.toml", "/ui/js/", "/ui/js"):
        resp = httpx.get(f"{server.url}{path}")
        if resp.status_code == 200:  # '..' resolved by the client to an existing route
            assert path == "/ui/../healthz", path
            continue
        assert resp.status_code == 404, path
        assert resp.json() == {"code": 404, "message": "no such file in the web page"}, path
    for method in ("POST", "PUT", "DELETE"):
        resp = httpx.request(method, f"{server.url}/ui/")
        assert resp.status_code == 405 and resp.headers["allow"] == "GET, HEAD"
        assert resp.json()["code"] == 405
