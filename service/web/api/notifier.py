"""Waking long-polls and event streams when the change log grows, with one Redis connection per
process: a loop blocks on XREAD from the newest entry it knows and wakes every waiter on news.

A waiter asks :meth:`ChangeNotifier.wait_beyond` with the position it has read up to; if the
loop already saw something newer it returns at once, so an entry appended between the waiter's
read and its wait is never slept through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service import keys
from service.store.availability import Outage
from service.store.changelog import ChangeLog, Position

log = logging.getLogger(__name__)

BLOCK_MS = 10_000
RETRY_SECONDS = 1.0


class ChangeNotifier:
    def __init__(self, redis: Redis):
        self.redis = redis
        self.latest: Position | None = None
        self._news = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(log, "change-log long-polls and event streams wait")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="changelog-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_beyond(self, position: Position, seconds: float) -> bool:
        """True once the log holds an entry after ``position``; False after ``seconds``."""
        self.start()

        def newer() -> bool:
            return self.latest is not None and self.latest > position

        async with self._news:
            try:
                await asyncio.wait_for(self._news.wait_for(newer), seconds)
            except TimeoutError:
                return newer()
            return True

    async def _run(self) -> None:
        while True:
            try:
                if self.latest is None:
                    self.latest = await ChangeLog(self.redis).head()
                    await self._wake()
                answer = await self.redis.xread({keys.CHANGELOG: str(self.latest)}, count=1000, block=BLOCK_MS)
                self._outage.succeeded()
                if answer:
                    self.latest = Position.parse(answer[0][1][-1][0].decode())
                    await self._wake()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._outage.failed(exc)  # one line per outage, not one per retry
                await asyncio.sleep(RETRY_SECONDS)

    async def _wake(self) -> None:
        async with self._news:
            self._news.notify_all()
