"""Local blobs survive a power cut: a blob's file, its directory, and every new prefix directory's
entry in its parent are fsynced before ``put`` returns. The fsyncs are observed by wrapping the
standard library's ``os.fsync`` (our code runs unchanged)."""

from __future__ import annotations

import gc
import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from mediagate.storage.local import LocalStorage

BLOB = "abcd" + "0" * 28


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    synced: list[Path] = []
    real: Callable[[int], None] = os.fsync

    def fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def staged(tmp_path: Path, data: bytes = b"bytes") -> Path:
    path = tmp_path / f"staged-{threading.get_ident()}-{len(list(tmp_path.iterdir()))}"
    path.write_bytes(data)
    return path


def test_a_new_prefix_directory_is_made_durable_up_to_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "blobs")
    synced = record_fsyncs(monkeypatch)
    storage.put(BLOB, staged(tmp_path))
    root = storage.root.resolve()
    # root holds the new "ab", "ab" holds the new "cd", "cd" holds the blob's entry
    assert set(synced) == {root, root / "ab", root / "ab" / "cd"}
    assert (storage.root / "ab" / "cd" / BLOB).read_bytes() == b"bytes"


def test_a_prefix_another_writer_just_made_is_still_made_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory already exists (another process made it, its fsync maybe not yet done):
    existing is no proof that its entry is on disk, so its parents are fsynced too."""
    storage = LocalStorage(tmp_path / "blobs")
    (storage.root / "ab" / "cd").mkdir(parents=True)
    synced = record_fsyncs(monkeypatch)
    storage.put(BLOB, staged(tmp_path))
    root = storage.root.resolve()
    assert {root, root / "ab"} <= set(synced)


def test_later_blobs_in_a_known_prefix_fsync_only_their_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "blobs")
    storage.put(BLOB, staged(tmp_path))
    synced = record_fsyncs(monkeypatch)
    storage.put("abcd" + "1" * 28, staged(tmp_path))
    assert synced == [storage.root.resolve() / "ab" / "cd"]


def test_the_record_of_durable_prefixes_does_not_grow_with_the_prefixes(tmp_path: Path) -> None:
    """It fills up over a long run (65,792 prefix directories): a fixed table, not an entry per
    prefix (a set of Paths held some 370 bytes for each, a resident size growing for hours)."""
    storage = LocalStorage(tmp_path / "blobs")
    source = tmp_path / "staged"
    # the interpreter's table of interned names grows with the Paths of a first run, then stays
    warm = [Path(tmp_path, f"{n:032x}") for n in range(4000)]
    del warm
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(0, 0x10000, 109):  # 602 prefix directories "ab/cd"
            source.write_bytes(b"x")
            storage.put(f"{n:04x}" + "0" * 28, source)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes kept for 602 prefixes"
    assert (storage.root / "ff" / "e5" / ("ffe5" + "0" * 28)).read_bytes() == b"x"
