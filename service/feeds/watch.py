"""Knowing that a feed changed without asking Redis on every request.

Every write that moves a feed's version also PUBLISHes the feed's name (see ``Store``). A
:class:`FeedWatch` subscribes once per process; a cached rendering stays trusted while the
subscription is up, no change of its feed was announced since it was checked, and it was
checked less than ``max_staleness`` seconds ago. If the subscription drops, every request goes
back to reading the version (one GET), and after reconnecting every feed is re-checked once:
changes published while nobody listened are never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_MAX_STALENESS = 5.0  # seconds a trusted version may go unverified even with no message
RECONNECT_DELAY = 1.0


class FeedWatch:
    """Per-feed change generations fed by pub/sub; ``generation()`` is read before a version GET."""

    def __init__(
        self,
        redis: Redis,
        channel: str,
        *,
        max_staleness: float = DEFAULT_MAX_STALENESS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.redis = redis
        self.channel = channel
        self.max_staleness = max_staleness
        self.monotonic = monotonic
        self.connected = False
        self._epoch = 0  # bumped on every (re)subscribe: invalidates every feed at once
        self._generations: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def stamp(self, feed_name: str) -> tuple[int, int] | None:
        """What to remember alongside a version read now; None while not subscribed."""
        if not self.connected:
            return None
        return (self._epoch, self._generations.get(feed_name, 0))

    def still_valid(self, feed_name: str, stamp: tuple[int, int] | None, checked_at: float) -> bool:
        """True when the version read under ``stamp`` at ``checked_at`` can be served unchecked."""
        return (
            stamp is not None
            and self.connected
            and stamp == (self._epoch, self._generations.get(feed_name, 0))
            and self.monotonic() - checked_at < self.max_staleness
        )

    def changed(self, feed_name: str) -> None:
        self._generations[feed_name] = self._generations.get(feed_name, 0) + 1

    async def start(self, wait: float = 2.0) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connected = False

    async def _run(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._epoch += 1
                        self.connected = True
                        self._ready.set()
                    elif message["type"] == "message":
                        data = message["data"]
                        self.changed(data.decode() if isinstance(data, bytes) else str(data))
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ConnectionError) as exc:
                if self.connected:
                    log.warning("feed change subscription lost (%s); reading versions per request", exc)
                self.connected = False
                self._ready.set()  # a start() waiting for us should not hang while Redis is down
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_DELAY)
