"""mediagate's Python SDK: upload to mediagate (or the real clouds) in each dialect over httpx.

    from mediagate.client import ImageXClient, open_source
    source = open_source("cat.png")          # or an http(s) URL, or a data: URI
    result = ImageXClient("http://127.0.0.1:8080", "mybucket", ak, sk).upload(source)

Every adapter takes an injectable ``httpx.Client`` and returns an :class:`UploadResult`. None
replaces an existing object unless asked (``overwrite=True``): a taken key is :class:`ObjectExists`.
"""

from __future__ import annotations

from mediagate.client.base import ObjectExists, UploadError, UploadResult
from mediagate.client.imagex import ImageXClient
from mediagate.client.sources import Source, SourceError, open_source
from mediagate.client.upyun import UpyunClient
from mediagate.client.wantu import WantuClient

__all__ = [
    "ImageXClient",
    "ObjectExists",
    "Source",
    "SourceError",
    "UploadError",
    "UploadResult",
    "UpyunClient",
    "WantuClient",
    "open_source",
]
