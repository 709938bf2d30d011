"""A PATCH body as the core receives it: streamed, checksummed, and ending cleanly when the client
goes away, so that what arrived before is kept (tusd's behaviour; see the package docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from mediagate.core.errors import MalformedBody
from mediagate.protocols.tus.headers import Checksum, TusChecksumMismatch

IDLE_SECONDS = 60.0
"""A body that sends nothing for this long is treated as interrupted (a half-open connection
must not hold the upload's lease forever)."""


class PatchBody:
    """Iterate once. ``interrupted`` says the body ended early (disconnect or idle)."""

    def __init__(self, request: Request, checksum: Checksum | None, *, idle: float = IDLE_SECONDS) -> None:
        self.request = request
        self.checksum = checksum
        self.idle = idle
        self.interrupted = False
        self.received = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        stream = self.request.stream()
        while True:
            try:
                async with asyncio.timeout(self.idle):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                break
            except (ClientDisconnect, TimeoutError):
                self.interrupted = True
                break
            if not chunk:
                continue
            if self.checksum is not None:
                self.checksum.update(chunk)
            self.received += len(chunk)
            yield chunk
        if self.checksum is not None:
            if self.interrupted:  # raised inside the stream: the core discards the part
                raise MalformedBody(
                    "the body was interrupted; a part with Upload-Checksum is kept only whole"
                )
            if not self.checksum.matches():
                raise TusChecksumMismatch()
