"""Task kinds and their handlers, and the per-dialect shape of a task's result notification.

A handler is a blocking function of a :class:`TaskContext` returning a :class:`TaskResult` (the
files to publish and what the notification reports), or raising :class:`TaskFailed`. A dialect's
notifier turns a finished task into the :class:`Notification` its customers expect. Both are
registered by name (``services.task_registry`` wires the built-in ones), so new kinds (naga,
pretreatment, Wantu mediaEncode, scanPorn …) plug in without touching the queue.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediagate.core.outbox import Notification

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway
    from mediagate.core.values import Bucket, Task


class TaskFailed(Exception):
    """An attempt failed. ``retry`` False: trying again cannot help (bad parameters, missing
    source, no handler). ``status`` is the HTTP-like code the notification reports."""

    def __init__(self, reason: str, *, status: int = 500, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry = retry


@dataclass
class TaskContext:
    """What a handler gets: the task, its bucket, the gateway, a private work directory that is
    removed afterwards (made on first use, under ``staging``: a handler that needs none, such as
    an audit of a local blob, costs no mkdir/rmtree), and the moment (``time.monotonic``) by
    which it must be done."""

    task: Task
    bucket: Bucket
    gateway: Gateway
    staging: Path
    deadline: float
    _workdir: Path | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def workdir(self) -> Path:
        with self._lock:
            if self._closed:  # a handler still running past its timeout: its attempt is over
                raise TaskFailed("the attempt is over (it ran past its time limit)", retry=True)
            if self._workdir is None:
                self._workdir = Path(tempfile.mkdtemp(prefix=f"task-{self.task.id}-", dir=self.staging))
            return self._workdir

    def cleanup(self) -> None:
        """Remove the work directory, if one was made; none is made afterwards."""
        with self._lock:
            self._closed = True
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)

    def fetch_source(self) -> Path:
        """The source object's bytes in a local file, to read only (404 TaskFailed when it is
        gone): the blob's own file on local storage (no copy), else a copy in ``workdir``. A
        blob replaced meanwhile stays readable through an open handle; one deleted before it was
        opened fails the attempt, and the next attempt reads the new object."""
        obj = self.gateway.catalog.get_object(self.bucket.id, self.task.source)
        if obj is None:
            raise TaskFailed(f"the source file /{self.task.source} does not exist", status=404)
        direct = self.gateway.storage.local_path(obj.blob_id)
        if direct is not None and direct.is_file():
            return direct
        from mediagate.storage.base import BlobNotFound

        dest = self.workdir / "source"
        try:
            self.gateway.storage.assemble([obj.blob_id], dest)
        except BlobNotFound:  # storage lost it, or an outage hides it: worth another attempt
            raise TaskFailed(
                f"the bytes of the source file /{self.task.source} are missing from storage", retry=True
            ) from None
        return dest

    def fetch_object(self, key: str, what: str) -> Path:
        """Another object of the task's bucket (a watermark, a file to join), copied into
        ``workdir``, so that ffmpeg reads only our own local copies. ``what`` says where it was
        named, for the 404 reason ("named in avopts")."""
        from mediagate.storage.base import BlobNotFound

        obj = self.gateway.catalog.get_object(self.bucket.id, key)
        if obj is None:
            raise TaskFailed(f"the file /{key} {what} does not exist", status=404)
        dest = self.workdir / f"extra-{len(list(self.workdir.glob('extra-*')))}"
        try:
            self.gateway.storage.assemble([obj.blob_id], dest)
        except BlobNotFound:
            raise TaskFailed(f"the bytes of /{key} are missing from storage", retry=True) from None
        return dest


@dataclass
class TaskResult:
    """A successful attempt: files to publish (``(key, path)``, committed with ``done``) and what
    the result notification reports (stored on the task as ``result``)."""

    outputs: list[tuple[str, Path]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[TaskContext], TaskResult]
ResultNotifier = Callable[["Gateway", "Task", "Bucket", dict[str, Any]], Notification | None]
"""(gateway, task as finished, bucket, outcome) -> the notification owed, or None. ``outcome``
has ``status`` (200 on success), ``outputs`` (keys), ``result`` and ``reason``."""


class Registry:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.notifiers: dict[str, ResultNotifier] = {}

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def register_notifier(self, dialect: str, notifier: ResultNotifier) -> None:
        self.notifiers[dialect] = notifier

    def handler(self, kind: str) -> Handler | None:
        return self.handlers.get(kind)

    def notifier(self, dialect: str) -> ResultNotifier | None:
        return self.notifiers.get(dialect)
