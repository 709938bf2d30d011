"""The catalog's border (``mediagate.catalog.faults``): a database out of reach is
``CatalogUnavailable``, a full one ``InsufficientStorage``; a wrong statement stays the driver's
error (a bug, not an outage), and so does a lost race that ``Catalog._retry`` replays."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mediagate.catalog import Catalog
from mediagate.core.errors import CatalogUnavailable, InsufficientStorage
from tests.conftest import free_port


def test_a_database_that_refuses_connections_is_unavailable() -> None:
    catalog = Catalog(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    try:
        with pytest.raises(CatalogUnavailable) as caught:
            catalog.get_bucket("b")
        assert "refused" in str(caught.value.__cause__)  # the driver's error is kept, for the log
    finally:
        catalog.close()


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'missing-dir' / 'catalog.sqlite3'}")
    try:
        with pytest.raises(CatalogUnavailable):
            catalog.get_bucket("b")
    finally:
        catalog.close()


def test_a_full_sqlite_database_is_insufficient_storage(tmp_path: Path) -> None:
    """SQLite's own size cap (``max_page_count``) gives the same SQLITE_FULL as a full disk."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    try:
        with catalog.engine.connect() as conn:
            conn.execute(text("CREATE TABLE filler (data BLOB)"))
            conn.execute(text("PRAGMA max_page_count = 8"))
            with pytest.raises(InsufficientStorage) as caught:
                for _ in range(100):
                    conn.execute(text("INSERT INTO filler VALUES (zeroblob(4096))"))
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        catalog.close()


def test_a_wrong_statement_stays_the_drivers_error(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    try:
        with catalog.engine.connect() as conn, pytest.raises(OperationalError, match="no such table"):
            conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        catalog.close()
