"""The workers' and web's Redis connections pack commands with hiredis: byte for byte what
redis-py's own packer writes, for every kind of argument the store sends."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection

from service.store.connect import request_pool


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", "v"),
        ("EVALSHA", "ab" * 20, 2, b"raw", 1.5, -3, 0.1, 1e300, 10**20, "é—ü", memoryview(b"view")),
        ("ZADD", "trib:schedule", 1795798704.123456, "s1"),
        ("CONFIG GET", "maxmemory"),  # a command name of two words
        ("SET", "big", "x" * 100_000),
    ],
)
@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///tmp/redis.sock?db=1"])
def test_packing_matches_redis_py(url: str, args: tuple[Any, ...]) -> None:
    pool = request_pool(url, 1.0)
    plain = UnixDomainSocketConnection() if url.startswith("unix") else Connection()
    packed = pool.make_connection()
    assert type(packed) is not type(plain) and isinstance(packed, type(plain))
    assert b"".join(packed.pack_command(*args)) == b"".join(plain.pack_command(*args))
