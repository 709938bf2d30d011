"""Reading a LiveServer's log (started with ``MEDIAGATE_LOG_FORMAT=json``) the way an operator's
log shipper would: one JSON object per line."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import LiveServer


def mark(server: LiveServer) -> int:
    """Where the log ends now: pass it to :func:`lines_since`."""
    return len(server.log())


def lines_since(server: LiveServer, offset: int) -> list[str]:
    return server.log()[offset:].splitlines()


def records_since(server: LiveServer, offset: int) -> list[dict[str, Any]]:
    """Every line written since ``offset``, each of which must be one JSON object (a traceback or
    a plain-text line from uvicorn would not be)."""
    out = []
    for line in lines_since(server, offset):
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}\n{server.log()[offset:][-3000:]}") from None
    return out


def access_record(server: LiveServer, offset: int, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The one access line of request ``request_id`` (written just after its response is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [r for r in records_since(server, offset) if r.get("rid") == request_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) == 1, mine
    assert mine[0]["logger"] == "mediagate.access"
    return mine[0]
