"""Staging directories owned per process, so that no process removes another's uploads in flight.

Several processes share one home's ``staging`` directory (``serve --workers N``, more nodes on a
shared disk, the CLI). Each stages its files in a subdirectory of its own, named by its pid and a
random tag, and holds an exclusive ``flock`` on that directory for as long as it lives. The kernel
releases the lock when the process ends, however it ends (kill -9 included), so:

* a directory whose lock can be taken belongs to no live process: what it holds is left over
  from a crash, and :func:`sweep` removes it;
* a directory whose lock is held is never touched, whoever started after its owner.

A sweep can take the lock of a directory in the instant between its owner creating it and
locking it; :func:`claim` notices (the directory it locked is no longer the one at its path) and
claims a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import threading
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path


class StagingArea:
    """This process's staging directory under ``root``, claimed on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path: Path | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        if self._path is None:
            with self._lock:
                if self._path is None:
                    path, fd = claim(self.root)
                    weakref.finalize(self, _release, path, fd)
                    self._path = path
        return self._path

    @property
    def claimed(self) -> Path | None:
        """The directory if one was claimed (without claiming one)."""
        return self._path


def claim(root: Path) -> tuple[Path, int]:
    """Create and lock a new directory under ``root``; returns it and the descriptor holding the
    lock (closing it releases the directory to the next sweep)."""
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = root / f"{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # swept before we could open it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return path, fd
        except (BlockingIOError, FileNotFoundError):
            pass  # a sweep holds it or removed it: take another
        os.close(fd)


def sweep(root: Path, *, keep: Path | None = None, loose_older_than: timedelta = timedelta(hours=6)) -> int:
    """Remove every directory under ``root`` that no live process holds (except ``keep``), and
    loose files (staged by versions before per-process directories) older than
    ``loose_older_than``. Returns how many entries went."""
    removed = 0
    cutoff = datetime.now(UTC).timestamp() - loose_older_than.total_seconds()
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        if keep is not None and entry == keep:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                removed += _remove_unowned(entry)
            elif entry.lstat().st_mtime <= cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def _remove_unowned(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # a live process owns it
        shutil.rmtree(path, ignore_errors=True)
        return 1
    finally:
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    """Give up a directory at the end of its owner's life: remove it if empty, then unlock."""
    with contextlib.suppress(OSError):
        path.rmdir()
    with contextlib.suppress(OSError):
        os.close(fd)
