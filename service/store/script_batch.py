"""Coalesce the Lua calls of concurrent polls into one round trip per event-loop turn.

Fifty polls starting in the same turn would each pay a round trip (a write, a read, two
syscalls, a wake-up of Redis). Queued here, they go out together on the process's
:class:`~service.store.script_channel.ScriptChannel`: same commands, same atomicity per call
(each is still its own script), a fraction of the per-call cost. :class:`Coalescer` goes one
step further for calls whose script takes many items (the ends of polls): the items handed in
during one turn become one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from service.store.script_channel import ScriptChannel

MAX_BATCH = 256

T = TypeVar("T")


class ScriptBatcher:
    def __init__(self, redis: Redis):
        self.redis = redis
        self._shas: dict[str, str] = {}
        self._queue: list[tuple[str, list[Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones
        self._channel = ScriptChannel(redis)

    async def run(self, script: str, keys_: list[str], args: list[Any]) -> Any:
        if script not in self._shas:
            self._shas[script] = await self.redis.script_load(script)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((script, [*keys_, *args], future))
        self._queue[-1][1].insert(0, len(keys_))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)
        return await future

    def _flush_soon(self) -> None:
        self._scheduled = False
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        if self._queue:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_soon)
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[str, list[Any], asyncio.Future[Any]]]) -> None:
        try:
            results = await self._channel.call([("EVALSHA", self._shas[script], *args) for script, args, _ in batch])
        except Exception as exc:  # the connection failed: every caller learns it
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (script, call_args, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, NoScriptError):  # Redis restarted: load again, run this one alone
                try:
                    self._shas[script] = await self.redis.script_load(script)
                    future.set_result(await self.redis.evalsha(self._shas[script], *call_args))
                except Exception as exc:
                    future.set_exception(exc)
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class Coalescer(Generic[T]):
    """The items handed to :meth:`submit` during one event-loop turn, written by one ``write`` call.

    The callers of one write share its future, done with the write or failed with it: a batch
    of polls waits on one future per write, not one per poll. Nothing waits longer than the turn
    it was handed in, so a slow caller never holds back the others' items.
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[None]], max_items: int = MAX_BATCH):
        self._write = write
        self._max_items = max_items
        self._queue: list[T] = []
        self._done: asyncio.Future[None] | None = None  # the future of the items queued so far
        self._writing: set[asyncio.Task[None]] = set()  # strong references, as above

    def submit(self, item: T) -> asyncio.Future[None]:
        """Hand ``item`` in without waiting: the future is done once its write is (or failed).
        Items handed in during the same turn get the same future."""
        if self._done is None or len(self._queue) >= self._max_items:
            if self._queue:
                self._flush()
            loop = asyncio.get_running_loop()
            self._done = loop.create_future()
            loop.call_soon(self._flush)
        self._queue.append(item)
        return self._done

    def _flush(self) -> None:
        if self._done is None:  # written already (the queue filled up)
            return
        batch, done = self._queue, self._done
        self._queue, self._done = [], None
        task = asyncio.ensure_future(self._send(batch, done))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _send(self, batch: list[T], done: asyncio.Future[None]) -> None:
        try:
            await self._write(batch)
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(None)
