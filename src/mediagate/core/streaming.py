"""Which uploads stream on to storage while they arrive, and which stay whole in staging.

A backend that streams (``Storage.stream_from``: S3's part size) gets every body larger than that
as a multipart upload fed while the body arrives (core.ingest ``Spill``), so a plain large file
never sits whole on local disk. What must read the whole file after receive keeps it staged:

* upload-time processing (it rewrites the file) and grants that check a file as an image (width
  and height ranges, image-only types: the decode limits read the whole header, frames included);
  decided before the first byte, from the grant and the bucket's settings;
* any body whose first bytes are an image (GIF/WebP frame counts and TIFF pages need the whole
  file; variants are made from it); decided from the head once the body passes the threshold.

Everything else a commit checks works on the streamed body: sizes and MD5/SHA-256/CRC32 are
computed on the way, the type is sniffed from the staged head (``HEAD_BYTES``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import filetype

from mediagate.core.checks import checked_as_image
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Spill
from mediagate.core.preprocess import wants_processing
from mediagate.storage.base import Storage


def spill_for(
    storage: Storage,
    grant: UploadGrant,
    bucket_settings: Mapping[str, Any] | None,
    new_blob_id: Callable[[], str],
) -> Spill | None:
    """The spill for a body received under ``grant``, or None when it must stay staged whole."""
    threshold = storage.stream_from
    if threshold is None or grant.prebuffered or checked_as_image(grant):
        return None
    if wants_processing(grant.processing, bucket_settings):
        return None
    return Spill(threshold, lambda: storage.writer(new_blob_id()), is_image_head)


def part_spill(storage: Storage, new_blob_id: Callable[[], str]) -> Spill | None:
    """The spill for one part of a multi-part session (checked by size and digests only)."""
    if storage.stream_from is None:
        return None
    return Spill(storage.stream_from, lambda: storage.writer(new_blob_id()), lambda head: False)


def is_image_head(head: bytes) -> bool:
    """Whether a body starting with ``head`` is an image (then it stays staged whole)."""
    kind = filetype.guess(head)
    return kind is not None and kind.mime.startswith("image/")
