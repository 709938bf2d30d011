"""Metadata behind one repository class (``Catalog``); SQLite by default, PostgreSQL by URL."""

from mediagate.catalog.repo import Catalog
from mediagate.core.values import DirEntry

__all__ = ["Catalog", "DirEntry"]
