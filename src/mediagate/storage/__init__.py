"""Blob stores behind one small interface (see ``base.Storage``)."""

from mediagate.storage.base import BlobNotFound, Storage

__all__ = ["BlobNotFound", "Storage"]
