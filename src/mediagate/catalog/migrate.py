"""Schema migrations (Alembic), run programmatically on ``init`` and ``serve``.

Every ``serve`` checks the schema, but it is almost always current already: :func:`upgrade` then
answers from one query and the revision lines of the version files, without importing Alembic
(which, with Mako and Pygments, would stay in every server process's memory for nothing).

Several nodes may start at once against one catalog. Migrating runs under a database-wide lock
(PostgreSQL: a transaction-scoped advisory lock; SQLite: an exclusive lock on a file next to the
database), and whoever gets it looks at the revision again: the first node migrates, the others
find the schema current and do nothing. A catalog already migrated past what this code knows (a
newer node went first) is refused with :class:`SchemaTooNew` instead of half-understood.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^revision\s*=\s*['\"](\w+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(?:['\"](\w+)['\"]|None)", re.MULTILINE)
MIGRATION_LOCK = 0x6D656469_61676174
"""The PostgreSQL advisory lock key held while migrating (any constant no other code uses)."""


class SchemaTooNew(RuntimeError):
    """The catalog is at a revision this code does not know: a newer mediagate migrated it."""


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    """The newest revision of the (linear) history, or None if it is not one straight line."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        rev, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if rev is None or down is None:
            return None
        revisions[rev.group(1)] = down.group(1)
    heads = set(revisions) - {down for down in revisions.values() if down}
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None for an empty database or a schema Alembic never touched)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def known_revisions() -> set[str]:
    found: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if (rev := _REVISION.search(path.read_text())) is not None:
            found.add(rev.group(1))
    return found


def upgrade(engine: Engine, revision: str = "head") -> bool:
    """Bring the schema to ``revision``; True if this call migrated, False if it was there already
    (the common case, answered without a lock). Safe to run from many nodes at once."""
    head = head_revision() if revision == "head" else None
    if head is not None and current_revision(engine) == head:
        return False
    from alembic import command

    config = alembic_config(engine)
    with migration_lock(engine) as connection:
        current = _revision_on(connection)
        if current is not None and current not in known_revisions():
            raise SchemaTooNew(
                f"the catalog's schema is at revision {current!r}, newer than this mediagate knows "
                f"({head_revision()!r}): a newer version migrated it; upgrade mediagate on this node"
            )
        if head is not None and current == head:
            return False  # another node migrated while we waited for the lock
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return True


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other migration on this database runs alongside."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            yield connection
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with engine.begin() as connection:
            yield connection
        return
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if we crash
        with engine.begin() as connection:
            yield connection


def _revision_on(connection: Connection) -> str | None:
    """The revision seen inside ``connection``'s transaction (None before the first migration);
    looks for the table first, as a failed SELECT would abort a PostgreSQL transaction."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
