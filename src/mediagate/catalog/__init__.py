"""Metadata behind one repository class (``Catalog``); SQLite by default, PostgreSQL by URL."""

from mediagate.catalog.repo import Catalog, DirEntry

__all__ = ["Catalog", "DirEntry"]
