"""An ASGI app built when its first request arrives, so a node that is never asked for it never
holds it in memory.

The /v1 API is a FastAPI app: FastAPI, its OpenAPI machinery and the API's pydantic schemas cost a
node ~9 MB of resident memory (measured, session 5) that an upload gateway serving only its
dialects never needs. The routing table mounts a :class:`Deferred` in its place; the first request
on one of its rows builds it, and every later request goes straight to it.

The build runs in a worker thread (imports and schema building take a few hundred ms, which must
not stall the event loop and the uploads in flight), under a lock: requests that arrive while it
runs wait for the same app, and it is built once per process however many event loops or threads
ask for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send


class Deferred:
    """The ASGI app ``build()`` returns, built on the first call (see the module docstring)."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._app is not None

    def get(self) -> ASGIApp:
        """The app, built now if no one has yet (blocking: call it from a worker thread)."""
        with self._lock:
            if self._app is None:
                self._app = self._build()
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            app = await to_thread.run_sync(self.get)
        await app(scope, receive, send)
