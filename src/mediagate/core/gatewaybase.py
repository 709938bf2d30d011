"""What every part of the gateway stands on: settings, catalog, storage, secrets, the staging area,
and the two catalog steps that bracket a blob's life (reserve before it is stored, drop when it
never got a row). The gateway's parts build on this class one by one (see ``core.gateway``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from anyio import to_thread

from mediagate.catalog import Catalog
from mediagate.config import Settings
from mediagate.core.ids import blob_hex
from mediagate.core.secrets import SecretBox
from mediagate.core.staging import StagingArea
from mediagate.core.values import Bucket
from mediagate.logs import describe, is_outage
from mediagate.media.limits import ImageLimits
from mediagate.storage.base import Storage

if TYPE_CHECKING:
    from mediagate.media.process import Processor

log = logging.getLogger("mediagate")


def new_blob_id() -> str:
    return blob_hex()


class GatewayBase:
    def __init__(self, settings: Settings, catalog: Catalog, storage: Storage, secrets: SecretBox) -> None:
        self.settings = settings
        self.catalog = catalog
        self.storage = storage
        self.secrets = secrets
        self.staging = StagingArea(settings.staging_dir)
        self.image_limits = ImageLimits.from_settings(settings)
        self._processor: Processor | None = None
        self._buckets: dict[str, tuple[float, Bucket | None]] = {}

    @property
    def staging_dir(self) -> Path:
        """This process's own staging directory (see core.staging), claimed on first use."""
        return self.staging.path

    @property
    def processor(self) -> Processor:
        """The process-wide image processor (bounded concurrent decodes), made on first use so
        that a gateway that never touches an image never loads libvips."""
        if self._processor is None:
            from mediagate.media.process import Processor

            self._processor = Processor(self.image_limits)
        return self._processor

    @property
    def upload_lease(self) -> timedelta:
        return timedelta(seconds=self.settings.upload_lease_seconds)

    def _reserve(self, blob_id: str) -> None:
        self.catalog.reserve_blob(blob_id, lease=self.upload_lease)

    def _drop_blob(self, blob_id: str) -> None:
        self.storage.delete(blob_id)
        self.catalog.forget_garbage([blob_id])


class Expiring(Protocol):
    """An object row or value: anything with an ``expires_at``."""

    @property
    def expires_at(self) -> datetime | None: ...


def is_expired(obj: Expiring) -> bool:
    """Whether the object's ttl has passed: it is gone for clients, though its row may remain
    until the collector runs."""
    if obj.expires_at is None:
        return False
    expires = obj.expires_at if obj.expires_at.tzinfo else obj.expires_at.replace(tzinfo=UTC)
    return expires <= datetime.now(UTC)


async def quietly(fn: Any, *args: Any) -> None:
    try:
        await to_thread.run_sync(fn, *args)
    except Exception as exc:  # cleanup must not hide the original error
        if is_outage(exc):  # the request's own access line already names the outage
            log.debug("cleanup failed during an outage: %s", describe(exc))
        else:
            log.exception("cleanup failed")
