"""Core tests that need a catalog get the catalog suite's own (SQLite and PostgreSQL)."""

from tests.catalog.conftest import catalog, catalog_url  # noqa: F401 - shared fixtures
