"""Metadata behind one repository class (``Catalog``); SQLite by default, PostgreSQL by URL."""

from mediagate.catalog.repo import Cap, Catalog
from mediagate.core.values import DirEntry

__all__ = ["Cap", "Catalog", "DirEntry"]
