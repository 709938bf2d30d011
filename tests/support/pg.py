"""PostgreSQL for tests: a throw-away schema per test on the shared server.

Each test gets its own schema (and a URL whose ``search_path`` points at it) rather than resetting
``public``, so suites that several engineers run at the same time on the one database never see
each other's tables. The schema is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Yield a catalog URL whose every table lives in a new, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
