"""Buckets and their credentials as the dialects see them: the bucket by name (remembered for a
moment), the opened secrets of a kind, access keys a dialect issues or revokes."""

from __future__ import annotations

import time

from anyio import to_thread

from mediagate.catalog import Catalog
from mediagate.config import Settings
from mediagate.core import threads
from mediagate.core.errors import NotFound
from mediagate.core.gatewaybase import GatewayBase
from mediagate.core.quotas import Quotas
from mediagate.core.secrets import SecretBox
from mediagate.core.values import Bucket
from mediagate.logs import note_bucket
from mediagate.storage.base import Storage

BUCKET_TTL = 1.0
"""Seconds a bucket row is remembered by :meth:`Gateway.find_bucket`."""


class BucketAccess(GatewayBase):
    def __init__(self, settings: Settings, catalog: Catalog, storage: Storage, secrets: SecretBox) -> None:
        super().__init__(settings, catalog, storage, secrets)
        self.quotas = Quotas(settings, catalog, self.bucket)
        """Quotas and rate limits of the buckets, keys and tokens (core.quotas)."""

    # -- buckets and credentials -----------------------------------------------------------------

    async def bucket(self, name: str) -> Bucket:
        found = await self.find_bucket(name)
        if found is None:
            raise NotFound(f"bucket {name!r} does not exist", code="bucket_not_found")
        return found

    async def find_bucket(self, name: str) -> Bucket | None:
        """The bucket row, remembered for ``BUCKET_TTL``: every request looks its bucket up (often
        twice) and buckets change rarely. Staleness is harmless: the commit re-checks that the
        bucket still exists, and credentials are never cached (revocation is immediate)."""
        now = time.monotonic()
        cached = self._buckets.get(name)
        if cached is not None and now - cached[0] < BUCKET_TTL:
            return cached[1]
        row = await threads.run_sync(self.catalog.get_bucket, name)
        found = None if row is None else Bucket.of(row)
        if len(self._buckets) > 10_000:  # unknown names from hostile clients must not grow it
            self._buckets.clear()
        self._buckets[name] = (now, found)
        return found

    async def secrets_of(self, bucket: Bucket, kind: str) -> list[tuple[str, str]]:
        """(key_id, plaintext secret) of every active credential of ``kind``, newest first."""
        sealed = await threads.run_sync(self.catalog.active_secrets, bucket.id, kind)
        return [(key_id, self.secrets.open(secret)) for key_id, secret in sealed]

    async def find_key(self, kind: str, key_id: str) -> tuple[Bucket, str] | None:
        """Bucket and plaintext secret for an access key id (ImageX/Wantu AK lookup)."""
        found = await to_thread.run_sync(self.catalog.find_credential, kind, key_id)
        if found is None:
            return None
        cred, bucket = found
        note_bucket(bucket.name)  # the access line names the bucket the key belongs to
        return Bucket.of(bucket), self.secrets.open(cred.sealed_secret)

    async def add_key(self, bucket: Bucket, kind: str, key_id: str, secret: str) -> None:
        """Record one more credential of ``kind`` for a bucket (sealed at rest), e.g. a dialect's
        revocable session id; it is found by :meth:`find_key` until :meth:`revoke_key`."""
        sealed = self.secrets.seal(secret)
        await to_thread.run_sync(self.catalog.add_credential, bucket.id, kind, key_id, sealed)

    async def revoke_key(self, kind: str, key_id: str) -> bool:
        """Revoke the active credential ``key_id`` of ``kind``; False if there was none."""
        found = await to_thread.run_sync(self.catalog.find_credential, kind, key_id)
        if found is None:
            return False
        await to_thread.run_sync(self.catalog.revoke_credential, found[0].id)
        return True
