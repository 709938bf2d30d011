"""The core pipeline, once: authorise (done by the dialect) -> receive -> check -> commit.

Dialects call :class:`Gateway`; it owns the catalog, the storage and the staging area, so protocol
code never touches SQL or files. Blocking work (catalog, storage, hashing) runs in worker threads.

Publishing order, which is what makes a crash safe:
1. bytes land in a fsynced staging file (``ingest.receive``), or, for a large body on a backend
   that streams (S3), in a multipart upload that stays invisible (core.streaming);
2. checks run on the staging file; a failure deletes it (and aborts the upload): nothing exists;
3. the blob id is recorded as garbage under a lease (``upload_lease_seconds``), then the file is
   moved into storage (or the multipart upload completed);
4. one catalog transaction inserts the row and un-records the blob (old version -> garbage,
   deleted after ``garbage_grace_seconds``).
A crash before 4 leaves only garbage the collector removes; after 4 the object is whole.
"""

from __future__ import annotations

from mediagate.core.gatewaybase import is_expired, new_blob_id
from mediagate.core.maintenance import Maintenance
from mediagate.core.uploads import Notifier, Stored

__all__ = ["Gateway", "Notifier", "Stored", "is_expired", "new_blob_id"]


class Gateway(Maintenance):
    """The facade dialects call. Its parts, one concept each, build on one another:
    ``gatewaybase`` (settings, catalog, storage, staging) -> ``access`` (buckets, credentials) ->
    ``namespace`` (paths, reads, folders, listings, copy/move) -> ``uploads`` -> ``sessions``
    (multi-part) -> ``records`` (tasks, feedback, signatures) -> ``maintenance`` (collector)."""
