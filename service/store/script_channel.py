"""The polls' Lua calls on a connection of their own, without redis-py's per-call machinery.

A redis-py pipeline takes a connection from the pool, checks it for stray data, and reads each
reply under its own timeout, one event-loop turn per reply as Redis runs the scripts: about
160 µs of CPU per round trip, and a worker polling thousands of sources a second makes hundreds
of round trips a second (``bench/poll_scale.py``). Here calls are written back to back and one
reader task hands each reply, in order (Redis answers in order), to the future waiting for it:
one turn wakes every caller whose reply came in, about 60 µs per round trip.

The connection is taken from the client's pool and kept, so it is set up as every other is
(address, credentials, DB, TLS) and closing the client closes it. When it fails, every call
waiting on it fails with the error redis-py would raise (a connection error, a timeout), and the
next call takes a new one.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
from redis._parsers import BaseParser  # the same reading of error replies as every other call
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError

READ_SIZE = 1 << 16


class ScriptChannel:
    def __init__(self, redis: Redis):
        self._pool = redis.connection_pool
        kwargs = self._pool.connection_kwargs
        self._timeout: float | None = kwargs.get("socket_timeout")
        self._encoding: str | None = kwargs.get("encoding", "utf-8") if kwargs.get("decode_responses") else None
        self._conn: AbstractConnection | None = None
        self._connecting = asyncio.Lock()
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._reading: asyncio.Task[None] | None = None  # the reader task, held: the loop keeps only weak references

    async def call(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` and return their replies in order; an error reply comes back as its
        exception (as ``Pipeline.execute(raise_on_error=False)`` gives it), a failed connection
        or a timeout is raised.

        A connection that Redis dropped (a restart) fails the call that finds it so: that call is
        sent once more on a new connection, as the pool's clients retry (:mod:`service.store.connect`).
        """
        try:
            return await self._call(commands)
        except RedisConnectionError:
            return await self._call(commands)

    async def _call(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        conn = self._conn or await self._connect()
        writer = conn._writer  # redis-py's own StreamWriter for this connection (redis>=5,<6)
        if writer is None or writer.is_closing():  # closed under us (the client's pool disconnected)
            error = RedisConnectionError("Connection closed.")
            await self._drop(conn, error)
            raise error  # call() sends it again on a new connection
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self._waiting.extend(futures)
        writer.write(b"".join(b"".join(conn.pack_command(*command)) for command in commands))
        try:
            async with asyncio.timeout(self._timeout):
                await futures[-1]  # replies come in order: once the last is in, all are
        except TimeoutError:
            error = RedisTimeoutError("Timeout reading from Redis")
            await self._drop(conn, error)  # replies still due would land on later calls' futures
            _retrieved(futures)
            raise error from None
        except BaseException:
            _retrieved(futures)
            raise
        return [future.result() for future in futures]

    async def _connect(self) -> AbstractConnection:
        async with self._connecting:
            if self._conn is None:
                conn = await self._pool.get_connection()
                self._conn = conn
                self._reading = asyncio.ensure_future(self._read(conn))
            return self._conn

    async def _read(self, conn: AbstractConnection) -> None:
        reader = hiredis.Reader(
            protocolError=InvalidResponse, replyError=BaseParser.parse_error, encoding=self._encoding
        )
        error: Exception = RedisConnectionError("Connection closed by server.")
        stream = conn._reader  # redis-py's own StreamReader for this connection (redis>=5,<6)
        try:
            while data := await stream.read(READ_SIZE):
                reader.feed(data)
                while (reply := reader.gets()) is not False:
                    future = self._waiting.popleft()
                    if not future.done():
                        future.set_result(reply)
        except Exception as exc:  # the socket failed, or a reply no caller waits for
            error = (
                exc
                if isinstance(exc, RedisConnectionError)
                else RedisConnectionError(f"Error reading from Redis: {exc}")
            )
        await self._drop(conn, error)

    async def _drop(self, conn: AbstractConnection, error: Exception) -> None:
        """Fail every call waiting on ``conn`` and give the connection back, closed."""
        closing = conn  # a second name: mypy narrows ``conn`` to ``self._conn``'s type by the check below
        if self._conn is not conn:  # dropped already (a timeout, then the reader's end)
            return
        self._conn = None
        waiting, self._waiting = self._waiting, collections.deque()
        for future in waiting:
            if not future.done():
                future.set_exception(error)
        await closing.disconnect(nowait=True)
        await self._pool.release(closing)


def _retrieved(futures: list[asyncio.Future[Any]]) -> None:
    """Mark the errors of a failed call's futures as seen: the caller gets the error once, and
    asyncio does not log one "exception was never retrieved" per command."""
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()
