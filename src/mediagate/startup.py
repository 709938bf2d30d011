"""What stops mediagate from starting, said in one line instead of a traceback.

A wrong ``database_url``, a missing database driver, a database or S3 endpoint that cannot be
reached: the operator needs the setting and the reason, not 400 lines of SQLAlchemy internals.
:func:`explain` turns such an exception into that line (None for anything else, which is a bug and
keeps its traceback); the CLI prints it and exits 1, the server's factory logs it and exits.
Passwords in database URLs are masked.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from mediagate.catalog.migrate import SchemaTooNew
from mediagate.config import Settings
from mediagate.core.errors import (
    CatalogUnavailable,
    InsufficientStorage,
    RedisUnavailable,
    StorageUnavailable,
)
from mediagate.core.gateway import Gateway
from mediagate.core.secrets import BadSecretKey, WrongSecretKey
from mediagate.logs import describe

PROBE_BLOB = "mediagate-startup-probe"


def check_dependencies(gw: Gateway) -> None:
    """One call to the catalog and one to the storage: raises what an upload would meet."""
    gw.catalog.get_bucket("")
    gw.storage.exists(PROBE_BLOB)


def preflight(settings: Settings) -> None:
    """Open the home as a server worker will, and reach its catalog and storage once."""
    from mediagate.services import build_gateway

    gw = build_gateway(settings)
    try:
        check_dependencies(gw)
    finally:
        gw.catalog.close()
    if settings.redis_url is not None:
        check_redis(settings.redis_url)


def check_redis(url: str) -> None:
    """One PING to the configured Redis: RedisUnavailable (with the cause chained) if it fails."""
    import redis

    from mediagate import redisconn

    client = redisconn.connect(url)
    try:
        redisconn.ping(client)
    except redis.RedisError as exc:
        raise RedisUnavailable() from exc
    finally:
        client.close()


def safe_url(url: str) -> str:
    """``url`` with its password masked (also when it does not parse as a URL)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def explain(exc: BaseException, settings: Settings | None) -> str | None:
    """One line naming the setting and the problem, or None when ``exc`` is not a start-up
    problem. ``settings`` is None when they could not be read (``exc`` says why, then)."""
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        return f"invalid settings (MEDIAGATE_* environment or mediagate.toml): {problems}"
    if settings is None:
        return None
    db = f"database_url {safe_url(settings.catalog_url)!r}"
    if isinstance(exc, NoSuchModuleError):
        scheme = settings.catalog_url.partition("://")[0]
        return f"{db}: unknown database kind {scheme!r} (use e.g. postgresql+psycopg:// or sqlite:///)"
    if isinstance(exc, ArgumentError):
        return f"{db} is not a database URL (e.g. postgresql+psycopg://user@host/db): {describe(exc)}"
    if isinstance(exc, ImportError) and _from_sqlalchemy(exc):
        return f"{db}: its database driver is not installed ({describe(exc)})"
    cause = describe(exc.__cause__) if exc.__cause__ is not None else str(exc)
    if isinstance(exc, CatalogUnavailable):
        return f"cannot use the catalog database at {safe_url(settings.catalog_url)}: {cause}"
    if isinstance(exc, InsufficientStorage):
        return f"no space left: {cause}"
    if isinstance(exc, StorageUnavailable):
        where = safe_url(settings.s3_endpoint_url) if settings.s3_endpoint_url else "the default AWS endpoint"
        return f"cannot use S3 bucket {settings.s3_bucket!r} at {where}: {cause}"
    if isinstance(exc, RedisUnavailable) and settings.redis_url is not None:
        return f"cannot use Redis at {safe_url(settings.redis_url)} (redis_url): {cause}"
    if isinstance(exc, WrongSecretKey | BadSecretKey | SchemaTooNew):
        return str(exc) if not isinstance(exc, BadSecretKey) else f"MEDIAGATE_SECRET_KEY / secret.key: {exc}"
    if isinstance(exc, RuntimeError) and "S3 bucket" in str(exc):
        return str(exc)
    return None


def _from_sqlalchemy(exc: ImportError) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if "sqlalchemy" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
