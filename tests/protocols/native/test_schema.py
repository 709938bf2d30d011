"""The /v1 API against its own OpenAPI schema: schemathesis fuzzes every operation on a live server
(with a server-wide admin key, and a real bucket and object to aim at) and finds no 5xx, and every
answer conforms to the schema (status, content type, body, headers). Bounded to about a minute:
``MAX_EXAMPLES`` cases per operation and phase. The docs pages load their viewers from the
package, never from another host."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.native.api import client, new_key

MAX_EXAMPLES = 30
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
DESTRUCTIVE = ["DELETE /v1/keys/{key_id}", "DELETE /v1/buckets/{bucket}"]
"""Run on their own, last: fuzzed first, they could revoke the run's key or delete its bucket."""


def schemathesis(
    server: LiveServer, secret: str, config: Path, *selection: str
) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [
            str(tool),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {secret}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-database",
            "none",
            "--generation-with-security-parameters",
            "false",
            "--seed",
            "20261205",
            "--workers",
            "2",
            "--no-color",
            *selection,
        ],
        cwd=config.parent,  # schemathesis keeps a cache in its working directory
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, tmp_path: Path
) -> None:
    secret = new_key(admin, None)
    with client(server.url, secret) as api:
        assert api.put(f"/v1/buckets/{bucket.bucket}/objects/seed.txt", content=b"seed").status_code == 201
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.bucket" = "{bucket.bucket}"\n"path.key" = "seed.txt"\n')
    excluded = [arg for name in DESTRUCTIVE for arg in ("--exclude-name", name)]
    included = [arg for name in DESTRUCTIVE for arg in ("--include-name", name)]
    for selection in (excluded, included):
        run = schemathesis(server, secret, config, *selection)
        report = run.stdout + run.stderr
        assert run.returncode == 0, report[-6000:]
        assert re.search(r"\d+ generated, \d+ passed", report), report[-3000:]
    statuses = re.findall(r"status=(\d{3})", server.log())
    assert statuses and not [s for s in statuses if s.startswith("5")], "a 5xx answer (see the server log)"


def test_docs_work_offline(server: LiveServer) -> None:
    """/docs and /redoc name only this server's own assets; the assets are served with it."""
    with httpx.Client(base_url=server.url) as c:
        index = c.get("/v1").json()
        assert (
            index["name"] == "mediagate" and index["docs"] == "/docs" and index["openapi"] == "/openapi.json"
        )
        schema = c.get("/openapi.json").json()
        assert schema["info"]["title"] == "mediagate /v1 API"
        assert "/v1/buckets/{bucket}/upload-tokens" in schema["paths"]
        assert "Error" in schema["components"]["schemas"]
        assert all(
            "422" not in op.get("responses", {}) for path in schema["paths"].values() for op in path.values()
        )
        for page in ("/docs", "/redoc"):
            html = c.get(page)
            assert html.status_code == 200 and "text/html" in html.headers["content-type"]
            urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html.text)
            assert urls and all(u.startswith("/") for u in urls), urls
            for url in urls:
                assert c.get(url).status_code == 200, url
        bundle = c.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
        assert c.get("/docs/assets/LICENSE-swagger-ui").status_code == 200
        missing = c.get("/docs/assets/nope.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
