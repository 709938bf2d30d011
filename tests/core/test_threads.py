"""core.threads: the hot path's worker-thread hop keeps the caller's context and is never abandoned."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from mediagate.core import threads

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_the_function_runs_in_another_thread_and_sees_the_callers_context() -> None:
    async def scenario() -> tuple[str, int]:
        request.set("r-1")
        return await threads.run_sync(lambda: (request.get(), threading.get_ident()))

    seen, ident = asyncio.run(scenario())
    assert seen == "r-1"
    assert ident != threading.get_ident()


def test_errors_reach_the_caller() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(threads.run_sync(fail))


def test_a_cancelled_caller_waits_for_a_started_function_to_end() -> None:
    """Cleanup after a cancellation must not race the thread (a file still being written)."""
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    async def scenario() -> bool:
        task = asyncio.create_task(threads.run_sync(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return finished.is_set()

    assert asyncio.run(scenario()) is True
