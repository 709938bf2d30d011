"""One attempt of one task: claim, run the kind's handler under a lease and a timeout, record.

Called by the engine's workers with nothing but a task id (the engine may deliver an id twice, or
after the task is done: the claim makes those no-ops). Blocking; runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from mediagate.catalog.models import Bucket, Task
from mediagate.catalog.repo import LeaseLost
from mediagate.core import values
from mediagate.core.errors import MediagateError, from_os_error
from mediagate.core.gateway import Gateway
from mediagate.core.outbox import Notification, Outgoing, TaskDone
from mediagate.logs import FailureStreak, describe, is_outage
from mediagate.tasks.registry import Registry, TaskContext, TaskFailed, TaskResult

log = logging.getLogger("mediagate.tasks")
T = TypeVar("T")

BACKOFF_FACTOR = 4.0
MAX_BACKOFF_SECONDS = 3600.0
OUTAGE_BACKOFF_SECONDS = 60.0
"""Longest wait between tries of a task held up by a dependency outage."""


def backoff(base_seconds: float, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones (base, 4x base, 16x base …)."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, base_seconds * BACKOFF_FACTOR ** (attempts - 1)))


class Runner:
    def __init__(
        self, gateway: Gateway, registry: Registry, *, on_notify: Callable[[], None] | None = None
    ) -> None:
        self.gw = gateway
        self.registry = registry
        self.on_notify = on_notify
        """Called after a notification was committed (wakes this process's delivery loop)."""
        self._helpers = threading.local()
        """Each worker thread's :class:`_Helper` (see :meth:`_within`)."""
        self._all_helpers: list[_Helper] = []
        self._outage = FailureStreak(log, "task runner")
        self._outages = 0
        """Attempts given back to an outage since a task last succeeded (the backoff grows)."""

    def close(self) -> None:
        """Let every helper thread end once its job in hand (if any) is done."""
        helpers, self._all_helpers = self._all_helpers, []
        for helper in helpers:
            helper.abandon()

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.gw.settings.task_lease_seconds)

    def run(self, task_id: str) -> str | None:
        """Run one attempt of ``task_id`` if it is due; returns the status it was left in (None:
        nothing to do, e.g. a duplicate hand-out)."""
        catalog = self.gw.catalog
        task = catalog.claim_task(task_id, datetime.now(UTC), lease=self.lease)
        if task is None:
            return None
        bucket = catalog.get_bucket_by_id(task.bucket_id)
        if bucket is None:
            return None  # bucket deleted: its tasks went with it (cascade)
        if task.attempts > task.max_attempts:
            # the worker of its last attempt died (the relay took it back): give up, with a reason
            lost = TaskFailed(
                f"gave up after {task.max_attempts} attempts: the worker running it stopped before "
                "finishing (killed, or out of memory)",
                status=500,
            )
            return self._fail(task, bucket, lost)
        log.info("task %s (%s) attempt %s/%s", task.id, task.kind, task.attempts, task.max_attempts)
        return self._attempt(task, bucket)

    def _renew(self, task: Task) -> None:
        """The attempt's heartbeat: push its lease forward (it is still ours, and alive)."""
        try:
            self.gw.catalog.renew_task_lease(task.id, task.attempts, datetime.now(UTC) + self.lease)
        except Exception as exc:  # the catalog is away: the lease may lapse, the task reruns
            log.warning("task %s: lease renewal failed: %s", task.id, describe(exc))

    def _attempt(self, task: Task, bucket: Bucket) -> str:
        handler = self.registry.handler(task.kind)
        timeout = self.gw.settings.task_timeout_seconds
        ctx = TaskContext(
            values.Task.of(task),
            values.Bucket.of(bucket),
            self.gw,
            Path(self.gw.staging_dir),
            time.monotonic() + timeout,
        )
        try:
            if handler is None:
                raise TaskFailed(
                    f"task kind {task.kind!r} is not available in this mediagate build: "
                    "no handler is installed for it",
                    status=501,
                )
            outcome = self._within(task, timeout, lambda: handler(ctx))
            return self._succeed(task, bucket, outcome)
        except TaskFailed as exc:
            return self._fail(task, bucket, exc)
        except LeaseLost:
            log.warning("task %s: attempt %s lost its lease; another attempt owns it", task.id, task.attempts)
            return "lost"
        except Exception as exc:
            if is_outage(exc):
                return self._wait_out(task, exc)
            log.exception("task %s (%s) attempt %s failed", task.id, task.kind, task.attempts)
            return self._fail(task, bucket, TaskFailed(_describe(exc), status=500, retry=True))
        finally:
            ctx.cleanup()

    def _wait_out(self, task: Task, exc: Exception) -> str:
        """A dependency outage (the disk full, the blob store or the catalog out of reach) is not
        the task's fault: the attempt is given back and the task waits, however long the outage
        lasts, trying again after a backoff of at most ``OUTAGE_BACKOFF_SECONDS`` so that it runs
        soon after the dependency is back. The log says so once per outage (``FailureStreak``),
        not once per task and attempt."""
        error = exc if isinstance(exc, MediagateError) else from_os_error(exc)
        assert error is not None  # is_outage(exc)
        self._outage.failed(exc)
        self._outages += 1
        delay = min(
            backoff(self.gw.settings.task_backoff_seconds, self._outages),
            timedelta(seconds=OUTAGE_BACKOFF_SECONDS),
        )
        ok = self.gw.catalog.end_task_attempt(
            task.id,
            task.attempts,
            reason=f"waiting: {error.message}",
            retry_at=datetime.now(UTC) + delay,
            uncounted=True,
        )
        return "pending" if ok else "lost"

    def _succeed(self, task: Task, bucket: Bucket, outcome: TaskResult) -> str:
        self._outages = 0
        self._outage.succeeded()
        keys = [key for key, _ in outcome.outputs]
        done = TaskDone(task.id, task.attempts, keys, outcome.result)
        note = self._notification(
            task, bucket, {"status": 200, "outputs": keys, "result": outcome.result, "reason": None}
        )
        outbox: list[Outgoing] = [done, *([note] if note is not None else [])]
        self.gw.publish_outputs(bucket.id, outcome.outputs, outbox=outbox)
        log.info("task %s (%s) done: %s", task.id, task.kind, ", ".join(keys) or "no output")
        if note is not None and self.on_notify is not None:
            self.on_notify()
        return "done"

    def _fail(self, task: Task, bucket: Bucket, exc: TaskFailed) -> str:
        final = not exc.retry or task.attempts >= task.max_attempts
        reason = exc.reason
        if exc.retry and final:
            reason = f"gave up after {task.attempts} attempts: {exc.reason}"
        retry_at = (
            None
            if final
            else datetime.now(UTC) + backoff(self.gw.settings.task_backoff_seconds, task.attempts)
        )
        outcome = {"status": exc.status, "outputs": [], "result": {}, "reason": reason}
        note = self._notification(task, bucket, outcome) if final else None
        ok = self.gw.catalog.end_task_attempt(
            task.id,
            task.attempts,
            reason=reason,
            retry_at=retry_at,
            result={"status": exc.status},
            outbox=[note] if note is not None else [],
        )
        if not ok:
            return "lost"
        log.warning(
            "task %s (%s) attempt %s failed%s: %s",
            task.id,
            task.kind,
            task.attempts,
            "" if final else f", retrying at {retry_at:%H:%M:%S}",
            reason,
        )
        if note is not None and self.on_notify is not None:
            self.on_notify()
        return "failed" if final else "pending"

    def _within(self, task: Task, seconds: float, work: Callable[[], TaskResult]) -> TaskResult:
        """``work()`` on this worker's helper thread, waited for at most ``seconds`` while this
        thread renews the lease every third of it. A thread cannot be killed: past the timeout the
        attempt is failed (and retried), the helper is abandoned to finish alone (its result is
        thrown away; its ``done`` would be refused anyway, the attempt no longer holds the task)
        and the next attempt gets a new helper. Handlers that run subprocesses (ffmpeg) also get
        ``ctx.deadline`` and kill them themselves. The helper outlives the attempt: starting a
        thread per attempt was a quarter of a no-op task's cost."""
        helper = getattr(self._helpers, "helper", None)
        if helper is None:
            helper = self._helpers.helper = _Helper(f"{threading.current_thread().name}-handler")
            self._all_helpers.append(helper)
        done = helper.submit(work)
        deadline = time.monotonic() + seconds
        beat = max(0.1, self.gw.settings.task_lease_seconds / 3)
        while True:
            try:
                return done.result(min(beat, max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                pass
            if time.monotonic() >= deadline:
                helper.abandon()
                self._helpers.helper = None
                with contextlib.suppress(ValueError):
                    self._all_helpers.remove(helper)
                raise TaskFailed(
                    f"the task took longer than {seconds:g} s and was stopped", status=504, retry=True
                )
            self._renew(task)

    def _notification(self, task: Task, bucket: Bucket, outcome: dict[str, Any]) -> Notification | None:
        notifier = self.registry.notifier(task.dialect)
        if notifier is None or not task.notify_url:
            return None
        try:
            return notifier(self.gw, values.Task.of(task), values.Bucket.of(bucket), outcome)
        except Exception as exc:  # a bug building it must not wedge the task: it finishes unannounced
            if is_outage(exc):
                raise  # the catalog is away: the attempt is recorded later, with its notification
            log.exception("task %s: its result notification could not be built", task.id)
            return None


class _Helper:
    """A daemon thread that runs one worker's handlers, one at a time, until abandoned (a daemon,
    unlike ThreadPoolExecutor's, so a handler stuck past its timeout never holds up exit)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def submit(self, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((work, future))
        return future

    def abandon(self) -> None:
        """Stop after the job in hand (nothing else is ever given to it)."""
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            work, future = job
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MediagateError):
        return exc.message
    return f"internal error ({type(exc).__name__}: {exc})"[:500]
