"""One exception tree for the whole core.

Every error the core raises is a :class:`MediagateError` carrying a stable ``code``, an HTTP
``status`` and a ``message`` that is safe to show to an untrusted client (no secrets, no paths).
Each dialect renders these in its own format in exactly one place; anything that is *not* a
MediagateError is a bug and becomes a 500.

    MediagateError
    ├── BadRequest (400)            malformed input: bad base64/JSON, missing field, bad header
    │   ├── MalformedBody           truncated or invalid multipart/body stream
    │   ├── InvalidKey              a key/path that escapes the bucket or is not allowed
    │   └── ChecksumMismatch        declared MD5/CRC32/length does not match the bytes
    ├── Unauthorized (401)          missing/invalid signature, unknown operator or key
    ├── Forbidden (403)             authenticated but not allowed: expired, policy violation
    │   ├── Expired
    │   └── PolicyViolation         size/type/dimension outside the grant
    ├── NotFound (404)
    ├── MethodNotAllowed (405)      the path is served, but not with this method
    ├── Conflict (409)              insert-only and the key exists; non-empty folder
    ├── PayloadTooLarge (413)
    │   └── QuotaExceeded           the bucket's storage or object quota (core.quotas)
    ├── TooManyRequests (429)       over an uploads-per-minute limit; ``retry_after`` seconds
    ├── RangeNotSatisfiable (416)
    ├── UnsupportedMedia (415)      the bytes are not what the grant requires (e.g. not an image)
    ├── NotSupported (501→400)      a feature the request asks for that we do not offer yet
    ├── Unavailable (503)           a dependency is down; the client may retry later
    │   ├── CatalogUnavailable      the database (translated at the catalog's border)
    │   ├── StorageUnavailable      the blob store (translated at the S3 backend's border), or a
    │   │                           local disk gone read-only or failing
    │   └── RedisUnavailable        the Redis the nodes share (MEDIAGATE_REDIS_URL)
    └── InsufficientStorage (507)   the disk (or the database's disk) is full

Infrastructure failures keep their cause chained (``raise ... from exc``): the log line names it,
the client sees only the safe message. :func:`from_os_error` is the one place that decides which
``OSError`` means a full or failed disk (the front door applies it to whatever escapes a dialect).
"""

from __future__ import annotations

import errno


class MediagateError(Exception):
    code: str = "internal_error"
    status: int = 500
    default_message: str = "internal error"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class BadRequest(MediagateError):
    code = "bad_request"
    status = 400
    default_message = "bad request"


class MalformedBody(BadRequest):
    code = "malformed_body"
    default_message = "request body is malformed or truncated"


class InvalidKey(BadRequest):
    code = "invalid_key"
    default_message = "invalid object key"


class ChecksumMismatch(BadRequest):
    code = "checksum_mismatch"
    default_message = "checksum does not match the uploaded bytes"


class Unauthorized(MediagateError):
    code = "unauthorized"
    status = 401
    default_message = "authentication failed"


class Forbidden(MediagateError):
    code = "forbidden"
    status = 403
    default_message = "forbidden"


class Expired(Forbidden):
    code = "expired"
    default_message = "the signature or policy has expired"


class PolicyViolation(Forbidden):
    code = "policy_violation"
    default_message = "the upload violates the policy"


class NotFound(MediagateError):
    code = "not_found"
    status = 404
    default_message = "not found"


class MethodNotAllowed(MediagateError):
    code = "method_not_allowed"
    status = 405
    default_message = "method not allowed"


class Conflict(MediagateError):
    code = "conflict"
    status = 409
    default_message = "conflict"


class LimitExceeded(Conflict):
    """A bucket holds as many API keys, live upload tokens or open tus uploads as the server allows
    one bucket (``max_*_per_bucket`` settings; see core.apikeys, core.uploadtokens, core.sessions)."""

    code = "limit_exceeded"
    default_message = "the bucket has reached a limit of the server"


class PayloadTooLarge(MediagateError):
    code = "payload_too_large"
    status = 413
    default_message = "payload too large"


class QuotaExceeded(PayloadTooLarge):
    """The upload does not fit the bucket's quota (bytes or objects); see core.quotas."""

    code = "quota_exceeded"
    default_message = "the bucket's quota is exceeded"


class TooManyRequests(MediagateError):
    """Over an uploads-per-minute limit; ``retry_after``: seconds until the window reopens."""

    code = "rate_limited"
    status = 429
    default_message = "too many uploads; retry later"

    def __init__(self, message: str | None = None, *, retry_after: int = 60, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RangeNotSatisfiable(MediagateError):
    code = "range_not_satisfiable"
    status = 416
    default_message = "requested range not satisfiable"


class UnsupportedMedia(MediagateError):
    code = "unsupported_media"
    status = 415
    default_message = "unsupported media type"


class NotSupported(BadRequest):
    code = "not_supported"
    default_message = "not supported yet"


class Unavailable(MediagateError):
    """A dependency is down or refusing us; nothing was changed, the client may retry."""

    code = "service_unavailable"
    status = 503
    default_message = "the service is temporarily unavailable; retry later"


class CatalogUnavailable(Unavailable):
    code = "catalog_unavailable"
    default_message = "the catalog database is unavailable; retry later"


class StorageUnavailable(Unavailable):
    code = "storage_unavailable"
    default_message = "the object storage is unavailable; retry later"


class RedisUnavailable(Unavailable):
    code = "redis_unavailable"
    default_message = "the shared Redis is unavailable; retry later"


class InsufficientStorage(MediagateError):
    code = "insufficient_storage"
    status = 507
    default_message = "the server has no space left to store this upload"


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_DISK_FAILED = frozenset({errno.EROFS, errno.EIO})


def from_os_error(exc: BaseException) -> MediagateError | None:
    """The core error for an OS-level failure the client should hear about (a full disk or quota;
    a disk gone read-only or failing), or None when ``exc`` is something else (a bug, then)."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return InsufficientStorage()
    if isinstance(exc, OSError) and exc.errno in _DISK_FAILED:
        return StorageUnavailable("the server's disk cannot be written; retry later")
    return None
