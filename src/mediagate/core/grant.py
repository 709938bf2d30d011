"""UploadGrant: the one normalised form every dialect's policy or token becomes.

A dialect's ``authorise`` step verifies its signature and produces a grant; from then on the core
never looks at dialect fields again. Fields a later step owns (processing, async apps) are carried
here so that nothing a client asked for is silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mediagate.core.savekey import FileFacts
from mediagate.core.usermeta import check_user_meta

KeyRenderer = Callable[[FileFacts], str]
"""Turns the facts of a received file into the final (normalised) key."""


@dataclass(frozen=True)
class UploadGrant:
    bucket: str
    render_key: KeyRenderer
    expires_at: int | None = None
    size_range: tuple[int, int] | None = None
    exact_size: int | None = None
    content_md5: str | None = None
    content_type: str | None = None
    allowed_extensions: frozenset[str] | None = None
    allowed_mime: tuple[str, ...] | None = None
    width_range: tuple[int, int] | None = None
    height_range: tuple[int, int] | None = None
    insert_only: bool = False
    base64_encoded: bool = False
    content_secret: str | None = None
    ttl_seconds: int | None = None
    meta: dict[str, str] = field(default_factory=dict)
    processing: dict[str, str] = field(default_factory=dict)
    apps: list[dict[str, Any]] = field(default_factory=list)
    return_url: str | None = None
    notify_url: str | None = None
    callback_url: str | None = None
    ext_param: str | None = None
    max_size: int | None = None
    """Hard cap applied while streaming (the upper bound of size_range, or the server limit)."""
    prebuffered: bool = False
    """A file received before its policy (a FORM whose file came first): staged whole, however
    large, instead of streamed on to storage (core.streaming), and admitted to the quota at its
    commit rather than before its bytes (core.quotas), since neither check is known yet."""
    key: str | None = None
    """The key, when it is known before the file is (a REST PUT's path, a token's key; see
    :meth:`for_key`): quota admission then counts the object a replacement frees (core.quotas)."""

    def __post_init__(self) -> None:
        check_user_meta(self.meta)  # before any byte of the upload is read (core.usermeta)

    @classmethod
    def for_key(cls, bucket: str, key: str, **fields: Any) -> UploadGrant:
        """A grant whose key is ``key`` whatever the file (``render_key`` ignores its facts)."""

        def render(_facts: FileFacts) -> str:
            return key

        return cls(bucket=bucket, render_key=render, key=key, **fields)
