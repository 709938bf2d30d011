"""Catalog fixtures: every catalog test runs on SQLite (a tmp file) and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagate.catalog import Catalog
from mediagate.catalog.migrate import upgrade
from tests.support.pg import fresh_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables yet): a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    else:
        with fresh_schema() as url:
            yield url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """A migrated catalog (Alembic upgrade to head, as ``mediagate init`` does)."""
    cat = Catalog(catalog_url)
    upgrade(cat.engine)
    yield cat
    cat.close()
