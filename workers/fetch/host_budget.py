"""One politeness budget per host, shared by every worker through Redis: how long to wait.

Per host: at most ``[fetch] host_concurrency`` requests in flight, at most
``[fetch] host_requests_per_minute`` requests, and a pause that a ``Retry-After`` sets for the
whole host. One Lua call decides and takes a slot atomically (:mod:`service.store.host_slots`);
here is the policy around it: a short wait is waited out, a longer one (a pause, a rate limit)
defers the work to a later poll.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from redis.asyncio import Redis

from service import keys
from service.config import FetchConfig
from service.store.host_slots import ACQUIRE, PAUSE, HostLimits, Slot, Verdict, new_token
from service.store.script_batch import ScriptBatcher


@dataclass(frozen=True)
class Deferred:
    """The host cannot take a request for ``wait_seconds``: come back later, no request made."""

    host: str
    verdict: Verdict
    wait_seconds: float


class HostBudget:
    def __init__(
        self, redis: Redis, config: FetchConfig, *, max_wait_seconds: float = 5.0, batcher: ScriptBatcher | None = None
    ):
        self.redis = redis
        self.config = config
        self.max_wait_seconds = max_wait_seconds
        # A slot outlives the longest request (every redirect hop timing out) and then expires.
        # Set through its setter, which builds ``self.limits``: the HostLimits every begin names.
        self.slot_ms = int(config.timeout_seconds * (config.max_redirects + 1) * 1000) + 5000
        # Shared with the poll's begin/end calls: one pipeline per loop turn for all of them.
        self._batcher = batcher or ScriptBatcher(redis)

    @property
    def slot_ms(self) -> int:
        return self.limits.slot_ms

    @slot_ms.setter
    def slot_ms(self, value: int) -> None:
        # One HostLimits for every poll's begin rather than a new one each: the begin's arguments
        # are looked up by it, and a new dataclass hashes and compares field by field in Python.
        self.limits = HostLimits(self.config.host_concurrency, self.config.host_requests_per_minute, value)

    async def try_acquire(self, host: str) -> tuple[Verdict, float, Slot | None]:
        token = new_token()
        verdict, wait_ms = await self._batcher.run(ACQUIRE, list(keys.host_budget(host)), [token, *self.limits.args()])
        verdict = Verdict(int(verdict))
        return verdict, max(int(wait_ms), 0) / 1000, Slot(host, token) if verdict is Verdict.GRANTED else None

    async def acquire(
        self, host: str, first: tuple[Verdict, float] | None = None, token: str | None = None
    ) -> Slot | Deferred:
        """A slot on ``host``, waiting briefly; a longer wait (a pause, a rate limit) defers.

        ``first``/``token`` carry the verdict of an acquire already sent (at the start of a poll).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_seconds
        if first is not None:
            verdict, wait = first
            if verdict is Verdict.GRANTED:
                return Slot(host, token or "")
        else:
            verdict, wait, slot = await self.try_acquire(host)
            if slot is not None:
                return slot
        while True:
            if verdict is Verdict.PAUSED or loop.time() + wait > deadline:
                return Deferred(host, verdict, max(wait, 1.0))
            await asyncio.sleep(max(wait, 0.01))
            verdict, wait, slot = await self.try_acquire(host)
            if slot is not None:
                return slot

    async def release(self, slot: Slot) -> None:
        await self.redis.zrem(keys.host_budget(slot.host)[0], slot.token)

    async def pause(self, host: str, seconds: float) -> None:
        """Pause every source on ``host`` (a Retry-After); a longer pause already set stays."""
        if seconds > 0:
            await self._batcher.run(PAUSE, [keys.host_budget(host)[2]], [math.ceil(seconds * 1000)])

    async def paused_for(self, host: str) -> float:
        ttl = int(await self.redis.pttl(keys.host_budget(host)[2]))
        return max(ttl, 0) / 1000
