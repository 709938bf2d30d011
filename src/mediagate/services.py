"""All wiring in one place: settings -> catalog, storage, secrets, gateway.

The only module that knows every backend; the CLI and the app factory call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediagate.catalog import Catalog
from mediagate.catalog.migrate import upgrade
from mediagate.config import CONFIG_FILE, Settings
from mediagate.core.gateway import Gateway
from mediagate.core.secrets import SecretBox
from mediagate.storage.base import Storage
from mediagate.tasks.registry import Registry

if TYPE_CHECKING:
    from mediagate.tasks.engine import TaskEngine


def build_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        from mediagate.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    from mediagate.storage.local import LocalStorage

    return LocalStorage(settings.home / "blobs")


def init_home(settings: Settings) -> bool:
    """Create the home (idempotent). Returns True if it was new."""
    home = settings.home
    fresh = not (home / CONFIG_FILE).exists()
    for sub in ("staging", "blobs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    SecretBox.create_key_file(settings.key_file)
    if fresh:
        (home / CONFIG_FILE).write_text(
            "# mediagate settings; environment variables MEDIAGATE_<NAME> override these.\n"
            '# database_url = "postgresql+psycopg://user@host/db"\n'
            '# storage = "s3"\n'
            '# s3_endpoint_url = "http://127.0.0.1:9000"\n'
            "# allow_private_callbacks = false\n"
        )
    catalog = Catalog(settings.catalog_url)
    try:
        upgrade(catalog.engine)
    finally:
        catalog.close()
    return fresh


def build_gateway(settings: Settings, *, migrate: bool = True) -> Gateway:
    if not settings.key_file.exists():
        raise FileNotFoundError(
            f"{settings.home} is not a mediagate home; run `mediagate --home {settings.home} init`"
        )
    catalog = Catalog(settings.catalog_url)
    if migrate:
        upgrade(catalog.engine)
    return Gateway(settings, catalog, build_storage(settings), SecretBox.from_file(settings.key_file))


def task_registry() -> Registry:
    """Every task kind this build runs, and every dialect's result notification. A new kind (naga,
    pretreatment, Wantu mediaEncode, scanPorn …) registers its handler here."""
    from mediagate.protocols.upyun import apps

    registry = Registry()
    apps.register(registry)
    return registry


def build_task_engine(gateway: Gateway) -> TaskEngine:
    """The relay and workers of this process (huey: in-process, or Redis with ``redis_url``)."""
    from mediagate.tasks.engine import TaskEngine

    return TaskEngine(gateway, task_registry())
