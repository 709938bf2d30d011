"""All wiring in one place: settings -> catalog, storage, secrets, gateway.

The only module that knows every backend; the CLI and the app factory call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediagate.catalog import Catalog
from mediagate.catalog.migrate import upgrade
from mediagate.config import CONFIG_FILE, Settings
from mediagate.core.gateway import Gateway
from mediagate.core.secrets import SecretBox, WrongSecretKey
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
    """Create the home (idempotent) and bring its catalog's schema up to date. Returns True if the
    home was new. The catalog may already serve other nodes: it is then migrated only if behind
    (see catalog.migrate) and the sealing key must be theirs (WrongSecretKey otherwise)."""
    home = settings.home
    fresh = not (home / CONFIG_FILE).exists()
    for sub in ("staging", "blobs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
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
        if settings.secret_key is None and not settings.key_file.exists():
            if catalog.sealed_secrets(limit=1):
                raise WrongSecretKey(
                    f"the catalog at {_safe(settings)} already holds secrets sealed by other nodes, "
                    f"and this home has no sealing key: set MEDIAGATE_SECRET_KEY to theirs "
                    f"(or copy their secret.key to {settings.key_file})"
                )
            SecretBox.create_key_file(settings.key_file)
        check_secret_key(catalog, secret_box(settings), settings)
    finally:
        catalog.close()
    return fresh


def is_home(settings: Settings) -> bool:
    """Whether ``mediagate init`` made this home (with MEDIAGATE_SECRET_KEY set, it has no
    secret.key file)."""
    return (settings.home / CONFIG_FILE).exists() or settings.key_file.exists()


def secret_box(settings: Settings) -> SecretBox:
    """The sealing keys: ``MEDIAGATE_SECRET_KEY`` if set, else the home's secret.key file."""
    if settings.secret_key is not None:
        return SecretBox.from_text(settings.secret_key.get_secret_value())
    return SecretBox.from_file(settings.key_file)


def check_secret_key(catalog: Catalog, box: SecretBox, settings: Settings) -> None:
    """Open one stored secret: a node with another key than the catalog's fails here, in one
    line, rather than on every authorised request."""
    for _id, sealed in catalog.sealed_secrets(limit=1):
        try:
            box.open(sealed)
        except WrongSecretKey:
            source = "MEDIAGATE_SECRET_KEY" if settings.secret_key is not None else str(settings.key_file)
            raise WrongSecretKey(
                f"the sealing key from {source} cannot open the secrets in the catalog at "
                f"{_safe(settings)}: every node of one catalog needs the same MEDIAGATE_SECRET_KEY "
                "(after a rotation, list the old key after the new one)"
            ) from None


def _safe(settings: Settings) -> str:
    from mediagate.startup import safe_url

    return safe_url(settings.catalog_url)


def build_gateway(settings: Settings, *, migrate: bool = True) -> Gateway:
    if not is_home(settings):
        raise FileNotFoundError(
            f"{settings.home} is not a mediagate home; run `mediagate --home {settings.home} init`"
        )
    box = secret_box(settings)
    catalog = Catalog(settings.catalog_url)
    if migrate:  # starting up: also say now, in one line, if the sealing key is not the catalog's
        upgrade(catalog.engine)
        check_secret_key(catalog, box, settings)
    return Gateway(settings, catalog, build_storage(settings), box)


def task_registry() -> Registry:
    """Every task kind this build runs, and every dialect's result notification. A new kind (naga,
    pretreatment, Wantu mediaEncode, scanPorn …) registers its handler here."""
    from mediagate.protocols.upyun import apps
    from mediagate.protocols.upyun import media_tasks as upyun_media
    from mediagate.protocols.wantu import media as wantu_media

    registry = Registry()
    apps.register(registry)
    upyun_media.register(registry)
    wantu_media.register(registry)
    return registry


def build_task_engine(gateway: Gateway) -> TaskEngine:
    """The relay and workers of this process (huey: in-process, or Redis with ``redis_url``)."""
    from mediagate.tasks.engine import TaskEngine

    return TaskEngine(gateway, task_registry())
