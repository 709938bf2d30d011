"""Group commit: many writers' small catalog writes share one transaction, so one fsync.

Every acknowledged upload needs two durable catalog writes (reserve its blob, commit its row). Run
one transaction each and concurrent uploads queue on the database's single writer, each paying a
WAL fsync; under load that queue, not the work, is the latency. Here writers hand their write as a
*job* (a function of a Connection) to one committer thread, which runs every job waiting at that
moment inside one transaction. Jobs almost never fail, so a batch first runs plainly; if any job
raises, that transaction is rolled back and the batch runs again with each job in its own SAVEPOINT
(savepoints for every job doubled the statements the single committer thread runs, which is what
bounds upload throughput):

* a job that raises is rolled back alone and its caller gets the exception; the others commit;
* a job that lost a race (``is_race``: a unique-key collision, a row gone, a deadlock) is replayed
  alone through the caller-supplied ``retry`` after the batch, as an unbatched write would be;
* if the transaction itself fails (e.g. the disk is full) every job in it gets that error and none
  of their writes happened;
* a job's future resolves only after the commit, so "done" means durable.

Batches form by themselves: while one commits, the next requests queue up behind it.

On PostgreSQL each statement is a round trip to the server, and the committer runs them one after
the other: six per upload made the batch's statements, not its one WAL flush, the committer's
time. So a job may be *staged* (:meth:`GroupCommitter.submit_staged`): a generator that sends its
statements without reading their results (``raw.send``) and yields :data:`SYNC` where it needs
them. The committer runs every staged job of a batch up to its next ``SYNC`` inside one pipeline
(``pipeline``: psycopg's pipeline mode), so that a batch of any size costs a round trip per stage,
not per statement. A stage that needs more than sending raw statements (SQLAlchemy, which cannot
run in pipeline mode) yields :data:`PLAIN` first: the rest of that job runs after the pipelined
stages, statement by statement. Without a pipeline (SQLite, where a statement is a function
call), when a batch runs apart, and on replays, a staged job simply runs through.
"""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
from collections.abc import Callable, Generator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import Connection

T = TypeVar("T")
Job = Callable[[Connection], Any]


class Stage(enum.Enum):
    SYNC = "sync"
    """The results of the statements sent so far are needed; the job goes on pipelined."""
    PLAIN = "plain"
    """The rest of the job runs outside the pipeline (it uses SQLAlchemy, or reads as it goes)."""


SYNC = Stage.SYNC
PLAIN = Stage.PLAIN
Steps = Generator[Stage, None, T]
StagedJob = Callable[[Connection], "Steps[Any]"]
_Item = tuple[StagedJob, "Future[Any]"]
_Outcomes = tuple[list[tuple["Future[Any]", Any]], list[tuple["Future[Any]", Exception]], list[_Item]]
Pipeline = Callable[[Connection], AbstractContextManager[object] | None]
"""A pipeline on the connection (statements sent without waiting, results read at its end), or
None where the database has none."""


def run_through(steps: Steps[T]) -> T:
    """A staged job's value, its stages run one after the other (no pipeline)."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def _through(job: StagedJob) -> Job:
    return lambda conn: run_through(job(conn))


def staged(job: Callable[[Connection], T]) -> Callable[[Connection], Steps[T]]:
    """A plain job as a staged one that runs outside the pipeline."""

    def steps(conn: Connection) -> Steps[T]:
        yield PLAIN
        return job(conn)

    return steps


class GroupCommitter:
    def __init__(
        self,
        write: Callable[[], AbstractContextManager[Connection]],
        retry: Callable[[Job], Any],
        *,
        is_race: Callable[[BaseException], bool],
        pipeline: Pipeline = lambda conn: None,
        found_dead: Callable[[Connection], bool] = lambda conn: False,
        max_batch: int = 256,
    ) -> None:
        """``found_dead``: whether a transaction's connection turned out to be one the server had
        ended (see :meth:`_transaction`); ``write`` may then lend connections without a ping."""
        self._write = write
        self._retry = retry
        self._is_race = is_race
        self._pipeline = pipeline
        self._found_dead = found_dead
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: Callable[[Connection], T]) -> Future[T]:
        return self.submit_staged(staged(job))

    def submit_staged(self, job: Callable[[Connection], Steps[T]]) -> Future[T]:
        """Submit a staged job (see the module docstring); its future gets the generator's value."""
        future: Future[T] = Future()
        self._ensure_thread()
        self._queue.put((job, future))
        return future

    def run(self, job: Callable[[Connection], T]) -> T:
        """Submit and wait (for synchronous callers)."""
        return self.submit(job).result()

    def close(self) -> None:
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="catalog-group-commit", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: list[_Item]) -> None:
        live = [(job, future) for job, future in batch if future.set_running_or_notify_cancel()]
        if len(live) > 1 and self._run_together(live):
            return
        self._run_apart(live)

    def _transaction(self, body: Callable[[Connection], T]) -> T:
        """``body`` in a write transaction, committed. A connection found dead before the commit
        (the server restarted since it was last used) wrote nothing: the body runs once more, on
        a new one. So the connection needs no ping when it is lent, a round trip per batch."""
        for attempt in (1, 2):
            dead = False
            try:
                with self._write() as conn:
                    try:
                        return body(conn)  # committed on leaving the block
                    finally:
                        dead = attempt == 1 and self._found_dead(conn)
            except Exception:
                if not dead:
                    raise
        raise AssertionError("unreachable")

    def _run_together(self, live: list[_Item]) -> bool:
        """Every job in one plain transaction; False (and nothing written) if any of them raised."""
        try:
            values = self._transaction(lambda conn: self._run_all(conn, [job for job, _ in live]))
        except Exception:
            return False
        for (_, future), value in zip(live, values, strict=True):
            future.set_result(value)
        return True

    def _run_all(self, conn: Connection, jobs: list[StagedJob]) -> list[Any]:
        """Every job's value: their pipelined stages in lockstep, one pipeline (one round trip)
        per stage, then what each runs plainly; the first error raised ends it."""
        pipeline = self._pipeline(conn)
        if pipeline is None:
            return [run_through(job(conn)) for job in jobs]
        steps = [job(conn) for job in jobs]
        values: list[Any] = [None] * len(steps)
        piped, plain = list(range(len(steps))), list[int]()
        while piped:
            going_on: list[int] = []
            with pipeline or contextlib.nullcontext():
                for i in piped:
                    try:
                        stage = next(steps[i])
                    except StopIteration as stop:
                        values[i] = stop.value
                        continue
                    (going_on if stage is SYNC else plain).append(i)
            piped = going_on
            pipeline = self._pipeline(conn) if piped else None
        for i in plain:
            values[i] = run_through(steps[i])
        return values

    def _run_apart(self, live: list[_Item]) -> None:
        """One transaction, each job in its own savepoint, so that a failing job fails alone."""
        if not live:
            return

        def body(conn: Connection) -> _Outcomes:
            done: list[tuple[Future[Any], Any]] = []
            failed: list[tuple[Future[Any], Exception]] = []
            replay: list[_Item] = []
            if len(live) == 1:  # alone: its failure is the transaction's, handled below
                job, future = live[0]
                done.append((future, self._run_all(conn, [job])[0]))
            for job, future in live if len(live) > 1 else ():
                try:
                    with conn.begin_nested():
                        done.append((future, run_through(job(conn))))
                except Exception as exc:
                    if self._is_race(exc):
                        replay.append((job, future))
                    else:
                        failed.append((future, exc))
            return done, failed, replay

        try:
            done, failed, replay = self._transaction(body)
        except Exception as exc:  # the transaction itself failed: none of its writes happened
            if self._is_race(exc):
                self._replay_alone(live)
            else:
                for _, future in live:
                    future.set_exception(exc)
            return
        for future, value in done:
            future.set_result(value)
        for future, error in failed:
            future.set_exception(error)
        self._replay_alone(replay)

    def _replay_alone(self, items: list[_Item]) -> None:
        for job, future in items:
            try:
                future.set_result(self._retry(_through(job)))
            except Exception as exc:
                with contextlib.suppress(Exception):
                    future.set_exception(exc)
