"""The Redis the nodes share (``MEDIAGATE_REDIS_URL``), when one is configured.

Optional by design: the embedded default (SQLite, local files, in-process tasks) needs no Redis,
so nothing imports the client library unless a URL is set. One client per process; it keeps its
own connection pool, and its timeouts bound every call so that a Redis that stops answering makes
a request fail, never hang.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mediagate.config import Settings

if TYPE_CHECKING:
    import redis

CONNECT_SECONDS = 2.0
CALL_SECONDS = 5.0


def connect(url: str) -> redis.Redis:
    """A client on ``url`` (``redis://[:password@]host:port/db``, ``rediss://`` for TLS)."""
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_SECONDS, socket_timeout=CALL_SECONDS, health_check_interval=30
    )


def shared(state: Any, settings: Settings) -> redis.Redis | None:
    """The process's client, kept on ``state`` (the app's), or None without ``redis_url``."""
    if settings.redis_url is None:
        return None
    client: redis.Redis | None = getattr(state, "redis", None)
    if client is None:
        client = connect(settings.redis_url)
        state.redis = client
    return client


def close_shared(state: Any) -> None:
    """Close the process's client, if :func:`shared` made one (app shutdown): its connections
    end with the server instead of being left to the garbage collector."""
    client: redis.Redis | None = getattr(state, "redis", None)
    if client is not None:
        state.redis = None
        client.close()


def ping(client: redis.Redis) -> None:
    """One round trip: raises (a ``redis.RedisError``) when Redis cannot be reached or refuses us."""
    client.ping()
