"""The polls' Lua calls on their own connection: replies in order, errors as redis-py gives them,
a dropped connection, a stalled or restarted Redis survived (real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.store.connect import request_client
from service.store.script_batch import ScriptBatcher
from service.store.script_channel import ScriptChannel
from tests.reliability.faults import RedisServer

ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) * 2}"


@pytest.fixture
async def client(redis: Redis, redis_url: str) -> AsyncIterator[Redis]:
    """The workers' kind of client (hiredis packing, bounded waits) on the suite's emptied DB."""
    workers_client = request_client(redis_url, 5.0)
    try:
        yield workers_client
    finally:
        await workers_client.aclose()


async def test_concurrent_calls_get_their_own_replies_in_order(client: Redis) -> None:
    sha = await client.script_load(ECHO)
    channel = ScriptChannel(client)

    async def call(n: int) -> list[object]:
        return await channel.call([("EVALSHA", sha, 1, f"k{n}", f"v{n}", n), ("EVALSHA", sha, 1, "x", "y", -n)])

    replies = await asyncio.gather(*(call(n) for n in range(200)))
    assert replies == [[[f"k{n}".encode(), f"v{n}".encode(), 2 * n], [b"x", b"y", -2 * n]] for n in range(200)]


async def test_error_replies_come_back_as_redis_py_raises_them(client: Redis) -> None:
    channel = ScriptChannel(client)
    missing, bad, ok = await channel.call(
        [("EVALSHA", "0" * 40, 0), ("EVAL", "return redis.call('NOPE')", 0), ("PING",)]
    )
    assert isinstance(missing, NoScriptError)
    assert isinstance(bad, ResponseError) and not isinstance(bad, NoScriptError)
    assert ok == b"PONG"


async def test_a_connection_redis_dropped_is_replaced_by_the_next_call(redis: Redis, client: Redis) -> None:
    channel = ScriptChannel(client)
    await redis.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal", "ID", await _id(channel))
    assert await channel.call([("PING",)]) == [b"PONG"]  # the killed connection, then a new one


async def test_a_connection_closed_by_its_client_is_replaced_by_the_next_call(client: Redis) -> None:
    channel = ScriptChannel(client)
    assert await channel.call([("PING",)]) == [b"PONG"]
    await client.connection_pool.disconnect()  # as closing the client does
    assert await channel.call([("ECHO", "again"), ("PING",)]) == [b"again", b"PONG"]


async def test_a_stalled_redis_times_the_call_out_and_a_restarted_one_is_used_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")  # its own server: freezing the suite's would stall other clients
    server.start()
    client = request_client(server.url, 0.3)
    try:
        channel = ScriptChannel(client)
        assert await channel.call([("PING",)]) == [b"PONG"]
        server.freeze()
        with pytest.raises(RedisTimeoutError):
            await channel.call([("PING",)])
        server.thaw()
        assert await channel.call([("ECHO", "after")]) == [b"after"]  # no reply of the timed-out call lands here
        server.kill()
        with pytest.raises(RedisConnectionError):
            await channel.call([("PING",)])
        server.start()
        assert await channel.call([("ECHO", "restarted")]) == [b"restarted"]
    finally:
        await client.aclose()
        server.stop()


async def test_the_batcher_reloads_a_script_redis_forgot(redis: Redis, client: Redis) -> None:
    batcher = ScriptBatcher(client)
    assert await batcher.run(ECHO, ["k"], ["v", 2]) == [b"k", b"v", 4]
    await redis.script_flush()
    assert await batcher.run(ECHO, ["k"], ["w", 3]) == [b"k", b"w", 6]


async def _id(channel: ScriptChannel) -> int:
    (client_id,) = await channel.call([("CLIENT", "ID")])
    assert isinstance(client_id, int)
    return client_id
