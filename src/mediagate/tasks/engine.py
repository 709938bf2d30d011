"""The execution engine: huey carries task ids from the relay to the workers.

Why huey (README, "Asynchronous tasks"): one small MIT library that offers the same API on an
in-process memory queue (the embedded default: ``mediagate serve`` needs nothing else started) and
on Redis (``MEDIAGATE_REDIS_URL``: every worker process of every node shares one queue), with its
own worker loop. At-least-once, retries, backoff and leases are *not* left to the engine: they live
in the catalog row (:mod:`.runner`), so losing the engine's message (a memory queue dying with its
process, a Redis flush) only delays a task until the relay hands it out again.

Workers are threads of this process (``settings.task_workers`` of them: the bound on tasks running
at once), each a loop of huey's ``dequeue``/``execute``. huey's ``Consumer`` is not used because it
installs signal handlers, which belong to uvicorn in ``serve`` and to ``mediagate worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey

from mediagate.core.gateway import Gateway
from mediagate.logs import describe, is_outage
from mediagate.tasks.registry import Registry
from mediagate.tasks.relay import Relay
from mediagate.tasks.runner import Runner

log = logging.getLogger("mediagate.tasks")

TASK_NAME = "mediagate.run_task"
IDLE_MIN_SECONDS = 0.01
IDLE_POLL_SECONDS = 0.2
"""Longest wait of an idle embedded worker before it looks at its queue again (Redis blocks)."""


def make_huey(settings: Any) -> Huey:
    """RedisHuey on ``settings.redis_url`` (queue ``settings.task_queue_name``), else MemoryHuey."""
    if settings.redis_url:
        return RedisHuey(settings.task_queue_name, url=settings.redis_url, results=False)
    return MemoryHuey(settings.task_queue_name, results=False)


def engine_name(settings: Any) -> str:
    """For logs and the CLI: which engine a home's settings select."""
    return "redis (huey)" if settings.redis_url else "embedded (huey, in-process)"


class TaskEngine:
    """The relay and the workers of one process."""

    def __init__(self, gateway: Gateway, registry: Registry, *, workers: int | None = None) -> None:
        self.gw = gateway
        self.huey = make_huey(gateway.settings)
        self.runner = Runner(gateway, registry, on_notify=self._wake_delivery)
        self._task = self.huey.task(name=TASK_NAME)(self._run)
        hold = timedelta(seconds=max(60.0, gateway.settings.task_lease_seconds * 2))
        self.relay = Relay(gateway.catalog, self.send, hold=hold)
        self.workers = workers if workers is not None else max(1, gateway.settings.task_workers)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, task_id: str) -> None:
        """Hand one task id to the engine (the relay does; so may a test)."""
        self.huey.enqueue(self._task.s(task_id))

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the workers and the relay. ``loop``: the event loop whose notification delivery
        loop should be woken when a task's notification is committed."""
        self._loop = loop
        logging.getLogger("huey").setLevel(logging.WARNING)  # mediagate.tasks logs each attempt itself
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"mediagate-task-worker-{n + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.relay.start()
        log.info("task workers: %s, engine %s", self.workers, engine_name(self.gw.settings))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop handing out and taking tasks; a task in progress is given ``timeout`` to finish
        (one still running then is abandoned: its lease lapses and it runs again elsewhere)."""
        self._stop.set()
        self.relay.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self.runner.close()
        pool = getattr(self.huey.storage, "pool", None)
        if pool is not None:  # RedisHuey's connections (a MemoryHuey has none)
            pool.disconnect()

    def _work(self) -> None:
        """One worker: huey's dequeue and execute (the Worker loop of huey's consumer, with an
        outage logged once rather than a traceback per poll)."""
        delay, down = IDLE_MIN_SECONDS, False
        while not self._stop.is_set():
            try:
                task = self.huey.dequeue()
            except Exception as exc:  # Redis away: tasks wait in the catalog meanwhile
                if not down:
                    log.warning("task worker cannot read the queue: %s: %s", type(exc).__name__, exc)
                down = True
                self._stop.wait(1.0)
                continue
            if down:
                log.warning("task worker reads the queue again")
                down = False
            if task is None:
                if not self.huey.storage.blocking:  # the memory queue: poll, backing off when idle
                    self._stop.wait(delay)
                    delay = min(IDLE_POLL_SECONDS, delay * 1.5)
                continue
            delay = IDLE_MIN_SECONDS
            try:
                self.huey.execute(task)
            except Exception:  # _run catches what the runner raises; this is huey's own trouble
                log.exception("task worker: unexpected error running %s", task)

    def _run(self, task_id: str) -> None:
        """What a worker runs for a message. The runner records every failure of the task itself;
        what escapes it is the catalog or storage being away while recording (the attempt's lease
        lapses and the task runs again later) or a bug."""
        try:
            self.runner.run(task_id)
        except Exception as exc:
            if is_outage(exc):
                log.warning("task %s: could not record its attempt: %s", task_id, describe(exc))
            else:
                log.exception("task %s: unexpected error", task_id)

    def _wake_delivery(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        from mediagate.core import notify

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(notify.wake)
