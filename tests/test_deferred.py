"""What a node loads only when asked: the /v1 FastAPI app is built on the first request to its rows
(``mediagate.deferred``), not when the app is made, and it is built once however many first
requests race for it; boto3 only with S3 storage, libvips, ONNX Runtime and ffmpeg only for the
work that needs them. Checked in a fresh interpreter, by what is in ``sys.modules``. (pydantic is
loaded by the settings themselves, pydantic-settings, so it is no part of this.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mediagate.deferred import Deferred
from tests.conftest import make_home

ON_DEMAND = ("fastapi", "mediagate.protocols.native.app", "boto3", "pyvips", "onnxruntime", "imageio_ffmpeg")

PROBE = """
import asyncio, json, sys
from pathlib import Path
import httpx
from mediagate.app import create_app
from mediagate.config import Settings

def loaded():
    return {name: name in sys.modules for name in sys.argv[2].split(",")}

async def main():
    seen = {"made": loaded()}
    app = create_app(Settings(home=Path(sys.argv[1])))  # no lifespan: no workers
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")
    answers = {
        "ui": (await client.get("/ui/")).status_code,
        "upyun": (await client.get("/nosuchbucket/a.txt")).status_code,
        "tus": (await client.options("/v1/tus/nosuchbucket")).status_code,
    }
    seen["served others"] = loaded()
    answers["v1"] = (await client.get("/v1")).json()["name"]
    seen["after /v1"] = loaded()
    answers["openapi"] = sorted((await client.get("/openapi.json")).json())[:3]
    answers["docs"] = (await client.get("/docs")).status_code
    answers["v1 error"] = (await client.get("/v1/nosuch")).json()["error"]["code"]
    print(json.dumps({"seen": seen, "answers": answers}))

asyncio.run(main())
"""


def probe(home: Path) -> dict[str, dict[str, object]]:
    command = [sys.executable, "-c", PROBE, str(home), ",".join(ON_DEMAND)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_fastapi_is_loaded_on_the_first_v1_request_not_before(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home").home
    found = probe(home)
    idle = dict.fromkeys(ON_DEMAND, False)
    assert found["seen"]["made"] == idle
    assert found["seen"]["served others"] == idle  # the page, a dialect, tus: no FastAPI
    assert found["seen"]["after /v1"] == {**idle, "fastapi": True, "mediagate.protocols.native.app": True}
    assert found["answers"] == {
        "ui": 200,
        "upyun": 404,
        "tus": 204,
        "v1": "mediagate",
        "openapi": ["components", "info", "openapi"],
        "docs": 200,
        "v1 error": "not_found",
    }


class Counted:
    """A slow build that counts how often it ran."""

    def __init__(self) -> None:
        self.builds = 0

    def __call__(self) -> ASGIApp:
        self.builds += 1
        time.sleep(0.2)  # long enough that every first request arrives while it runs
        built = self.builds

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await PlainTextResponse(f"build {built}")(scope, receive, send)

        return app


def test_racing_first_requests_from_several_event_loops_share_one_build() -> None:
    build = Counted()
    deferred = Deferred(build)
    answers: list[str] = []

    async def ask(n: int) -> None:
        transport = httpx.ASGITransport(app=deferred)
        client = httpx.AsyncClient(transport=transport, base_url="http://node")
        async with client, anyio.create_task_group() as tasks:
            for _ in range(n):
                tasks.start_soon(one, client)

    async def one(client: httpx.AsyncClient) -> None:
        answers.append((await client.get("/v1")).text)

    threads = [threading.Thread(target=anyio.run, args=(ask, 5)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert build.builds == 1
    assert deferred.built
    assert answers == ["build 1"] * 20
