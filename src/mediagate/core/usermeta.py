"""User metadata (UPYUN ``x-upyun-meta-<name>``, /v1 ``meta``): how much one object may carry.

Metadata is stored with the object and every UPYUN ``HEAD``/``GET`` of it returns each entry as a
response header, so what is stored must stay readable by the clients that read it back:
Python's ``http.client`` (under requests, urllib3 and the official upyun SDK) refuses a response
with more than 100 header lines, and Node's HTTP parser (the upyun Node SDK, browsers' fetch
through a Node proxy) a response head over 16 KiB. A UPYUN read already carries about twenty other
headers, so one object holds at most :data:`MAX_ENTRIES` entries and :data:`MAX_BYTES` bytes of
them written as header lines. The limits are checked wherever metadata is written, for every
dialect alike: when a grant carrying it is made (before the body of the upload is read), and when
an object's metadata is edited (UPYUN ``PATCH ?metadata=``, /v1 ``PATCH``), on the result. A
refusal is BadRequest ``metadata_too_large``; nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from mediagate.core.errors import BadRequest

MAX_ENTRIES = 50
MAX_BYTES = 8192
HEADER_PREFIX = "x-upyun-meta-"


def header_bytes(meta: Mapping[str, object]) -> int:
    """The size of ``meta`` written as ``x-upyun-meta-<name>: <value>\\r\\n`` lines."""
    return sum(len(HEADER_PREFIX) + len(str(k).encode()) + len(str(v).encode()) + 4 for k, v in meta.items())


def check_user_meta(meta: Mapping[str, object]) -> None:
    """Refuse metadata a client could not read back (the module docstring)."""
    if not meta:
        return
    if len(meta) > MAX_ENTRIES:
        raise BadRequest(
            f"an object holds at most {MAX_ENTRIES} metadata entries, not {len(meta)}",
            code="metadata_too_large",
        )
    size = header_bytes(meta)
    if size > MAX_BYTES:
        raise BadRequest(
            f"an object's metadata is at most {MAX_BYTES} bytes as headers, not {size}",
            code="metadata_too_large",
        )
