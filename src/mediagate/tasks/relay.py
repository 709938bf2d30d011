"""The relay: hands due task rows to the engine, by id, once (see ``Catalog.dispatch_tasks``).

One runs in every process that runs workers. Idle, it costs one indexed read per ``POLL_SECONDS``;
an upload that queued a task in this process wakes it at once (:func:`wake`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mediagate.catalog import Catalog
from mediagate.logs import FailureStreak

log = logging.getLogger("mediagate.tasks")

POLL_SECONDS = 0.5
BATCH = 50

_wakers: set[threading.Event] = set()
_wakers_lock = threading.Lock()


def wake() -> None:
    """Have this process's relays look for due tasks now (an upload just queued one)."""
    with _wakers_lock:
        for event in _wakers:
            event.set()


class EngineUnavailable(Exception):
    """The engine refused a hand-out (e.g. Redis is down)."""


class Relay:
    def __init__(self, catalog: Catalog, send: Callable[[str], None], *, hold: timedelta) -> None:
        self.catalog = catalog
        self.send = send
        self.hold = hold
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def relay_once(self) -> int:
        """Hand out every task due now (one batch); returns how many."""
        now = datetime.now(UTC)
        if not self.catalog.tasks_due(now):
            return 0
        ids = self.catalog.dispatch_tasks(now, hold=self.hold, limit=BATCH)
        for n, task_id in enumerate(ids):
            try:
                self.send(task_id)
            except Exception as exc:  # Redis away: what was not sent goes back to waiting
                with contextlib.suppress(Exception):
                    self.catalog.release_tasks(ids[n:])
                raise EngineUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return len(ids)

    def start(self) -> None:
        with _wakers_lock:
            _wakers.add(self._wake)
        self._thread = threading.Thread(target=self._loop, name="mediagate-task-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with _wakers_lock:
            _wakers.discard(self._wake)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        streak = FailureStreak(log, "task relay round")
        engine_down = False
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.relay_once()
            except EngineUnavailable as exc:  # an outage: one line when it starts, one when it ends
                if not engine_down:
                    log.warning("task queue unavailable, tasks wait in the catalog: %s", exc)
                engine_down, busy = True, 0
            except Exception as exc:
                streak.failed(exc)
                busy = 0
            else:
                streak.succeeded()
                if engine_down:
                    log.warning("task queue works again")
                engine_down = False
            if busy < BATCH:
                self._wake.wait(POLL_SECONDS)
