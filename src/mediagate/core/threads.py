"""Worker-thread hops for the small-upload hot path, cheaper than anyio's.

``anyio.to_thread.run_sync`` cost the event loop ~60-80 us of CPU per call (capacity limiter,
cancel scope, run-vars, checkpoints): 30 % of the loop's CPU on a small upload, which takes two
hops (py-spy, bench/small.py). This is a plain thread pool with the two properties of anyio's hop
that callers rely on:

* the function runs in a copy of the caller's context, so context variables (the request's log
  record, its body progress) read the same in the thread;
* a cancelled caller does not abandon a function that has started: it waits for it to end, then
  raises the cancellation, so cleanup code never races the thread (a staging file being fsynced,
  a blob being moved). One that has not started yet never runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

POOL_SIZE = 40
"""Threads at most, as anyio's default limiter: enough for that many fsyncs in flight."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="mediagate-hop")
    return _pool


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (see the module docstring for how it differs from anyio)."""
    context = contextvars.copy_context()
    future: Future[T] = _executor().submit(context.run, fn, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if future.running():
            await _outlast(future)
        raise


async def _outlast(future: Future[Any]) -> None:
    """Wait until ``future`` is done, whatever cancellations arrive meanwhile (its own outcome is
    the caller's business: it is re-raising a cancellation)."""
    waiter = asyncio.wrap_future(future)
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            continue
        except Exception:
            return
