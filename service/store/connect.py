"""Redis clients with bounded waits, and the start-up checks that turn a bad ``REDIS_URL`` or an
unreachable Redis into one readable line instead of a traceback.

Two kinds of client: a *request* client whose every call gives up after ``timeout`` seconds
(connect and read), so a stalled Redis costs a handler that long and no more; and a *listener*
client for pub/sub and blocking reads, which wait for news as long as they like and so cannot
have a read timeout (it would fire whenever nothing happens).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError

from service.errors import TributaryError
from service.logs import redact
from service.store.availability import REDIS_DOWN, describe

SCHEMES = ("redis", "rediss", "unix")


class RedisUnavailableError(TributaryError):
    """Start-up could not use the configured Redis; the message says which and why."""


def check_url(url: str) -> None:
    """Refuse a URL redis-py cannot use, naming the rule rather than raising its ValueError."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise RedisUnavailableError(
            f"REDIS_URL {redact(url)}: the scheme must be redis://, rediss:// or unix:// (got {scheme or 'none'!r})"
        )


def _options(url: str) -> dict[str, Any]:
    # A pooled connection that Redis dropped (a restart) fails its next command: try that
    # command once more on a new connection. Timeouts are not retried: they already cost a wait.
    options: dict[str, Any] = {
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "retry_on_error": [RedisConnectionError],
    }
    if urlsplit(url).scheme != "unix":
        options["socket_keepalive"] = True  # notice a peer that vanished without closing (TCP only)
    return options


class _HiredisPacking(AbstractConnection):  # type: ignore[misc]  # redis is read as untyped (pyproject)
    """Commands packed by hiredis (C), as redis-py's own sync client does; its asyncio client packs
    in Python, one join per argument, and a poll's Lua calls carry a few dozen arguments per source
    (``bench/poll_scale.py``: about 70 µs per poll of the 304 path went there)."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


class _PackedConnection(_HiredisPacking, Connection):  # type: ignore[misc]  # redis is read as untyped (pyproject)
    pass


class _PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):  # type: ignore[misc]  # redis is read as untyped (pyproject)
    pass


class _PackedSSLConnection(_HiredisPacking, SSLConnection):  # type: ignore[misc]  # redis is read as untyped (pyproject)
    pass


_PACKED: dict[type[Any], type[Any]] = {
    Connection: _PackedConnection,
    UnixDomainSocketConnection: _PackedUnixConnection,
    SSLConnection: _PackedSSLConnection,
}


def request_pool(url: str, timeout: float) -> ConnectionPool:
    """Connections for request handlers and jobs: every connect and read gives up after ``timeout`` s."""
    check_url(url)
    pool = ConnectionPool.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, **_options(url))
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return pool


def request_client(url: str, timeout: float) -> Redis:
    return Redis.from_pool(request_pool(url, timeout))


def listener_client(url: str, connect_timeout: float) -> Redis:
    """For SUBSCRIBE and XREAD BLOCK: no read timeout, a bounded connect."""
    check_url(url)
    return Redis.from_url(url, socket_connect_timeout=connect_timeout, **_options(url))


def ensure_reachable(url: str, timeout: float) -> None:
    """PING ``url`` once; a refusal, a timeout or a bad URL becomes one :class:`RedisUnavailableError`."""
    check_url(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as exc:
        raise RedisUnavailableError(f"REDIS_URL {redact(url)}: {exc}") from None
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise RedisUnavailableError(f"Redis at {redact(url)} refused the credentials: {describe(exc)}") from None
    except (*REDIS_DOWN, redis.RedisError) as exc:
        raise RedisUnavailableError(f"cannot reach Redis at {redact(url)}: {describe(exc)}") from None
    finally:
        client.close()
