"""The storage seam: what the core needs from a blob store, and nothing more.

Blobs are opaque, immutable byte strings addressed by an id the core chooses. Visibility is
decided by the catalog, never by storage: a blob without a catalog row is garbage, so a crash
between ``put`` and the catalog commit leaves nothing visible. Backends:

* ``local.LocalStorage``: files under ``<home>/blobs``; ``put`` is a rename of an fsynced staging
  file (same filesystem), so a blob is either whole or absent.
* ``s3.S3Storage``: an S3-compatible bucket.

Contract (checked by ``tests/storage/test_contract.py`` for every backend):
* ``put`` consumes ``source`` (a fsynced file in the staging directory) and makes the blob
  readable in full, or raises and leaves no blob (the caller still owns ``source`` then).
* ``open`` streams ``[start, end)``, clamped to the blob's size (a start at or beyond the end
  yields nothing); it raises :class:`BlobNotFound` when called, not when first iterated.
* ``size``/``open``/``assemble`` raise :class:`BlobNotFound` for a missing blob; ``exists``
  answers False; ``delete`` is idempotent.
* Blob ids are the core's own (hex uuids): :func:`check_blob_id` refuses anything that could
  name a path outside the store.
* ``assemble`` writes the concatenation of ``parts`` into a local file (fsynced) without holding
  them in memory; the core then hashes, checks and ``put``s it like any other upload.
* ``copy`` makes a new blob with another's bytes inside the store (kernel-side for local files,
  server-side on S3), whole or not at all; BlobNotFound for a missing source.
* ``writer`` starts a blob that is written while it streams in (S3: a multipart upload), for
  bodies larger than ``stream_from`` (None: the backend prefers staged files and ``put``). Nothing
  is readable before ``commit``; ``abort`` (idempotent, also after a failed ``write``) leaves no
  blob and nothing half-written behind; ``abort_stale_writes`` removes writers that a process
  which died never committed nor aborted (run by the garbage collector).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

CHUNK_SIZE = 1024 * 1024


class BlobNotFound(FileNotFoundError):
    """The blob does not exist (converted from each backend's own error at its border)."""


def check_blob_id(blob_id: str) -> str:
    """Refuse ids that are not a single plain name (they become file names and object keys)."""
    if not blob_id or "/" in blob_id or "\\" in blob_id or blob_id.startswith(".") or "\x00" in blob_id:
        raise ValueError("invalid blob id")
    return blob_id


Buffer = Sequence[bytes | bytearray]
"""Received chunks in order, handed to a writer as they came (see core.ingest)."""


class BlobWriter(Protocol):
    """One blob being written while its bytes arrive; used from one thread at a time."""

    blob_id: str

    def write(self, data: Buffer) -> None:
        """Append ``data``; may wait while earlier bytes are still being stored (backpressure)."""
        ...

    def finish(self) -> None:
        """No more bytes: store what is still buffered. The blob is not readable yet."""
        ...

    def commit(self) -> None:
        """Make the blob readable in full (after ``finish``)."""
        ...

    def abort(self) -> None:
        """Drop everything written; idempotent, never raises for a writer already gone."""
        ...


@runtime_checkable
class Storage(Protocol):
    stream_from: int | None
    """Bodies larger than this are worth a ``writer`` while they arrive; None: stage and ``put``."""

    def put(self, blob_id: str, source: Path) -> None: ...

    def open(self, blob_id: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def size(self, blob_id: str) -> int: ...

    def exists(self, blob_id: str) -> bool: ...

    def delete(self, blob_id: str) -> None: ...

    def assemble(self, part_ids: list[str], dest: Path) -> None: ...

    def copy(self, source_id: str, dest_id: str) -> None: ...

    def local_path(self, blob_id: str) -> Path | None:
        """A filesystem path for zero-copy serving, or None when the backend has none."""
        ...

    def writer(self, blob_id: str) -> BlobWriter: ...

    def read_url(self, blob_id: str, *, expires: int, content_type: str) -> str | None:
        """A URL a client can GET the blob from directly for ``expires`` seconds, answered with
        ``content_type``; None when the backend has none."""
        ...

    def abort_stale_writes(self, started_before: datetime) -> int:
        """Abort writers started before ``started_before`` and never finished; returns how many."""
        ...
