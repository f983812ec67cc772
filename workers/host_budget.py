"""One politeness budget per host, shared by every worker through Redis.

Per host: at most ``[fetch] host_concurrency`` requests in flight (a zset of slot tokens scored
by their expiry, so a worker killed mid-request frees its slot when the score passes), at most
``[fetch] host_requests_per_minute`` requests (a token bucket holding up to ten seconds' worth),
and a pause key that a ``Retry-After`` sets for the whole host. One Lua call decides and takes a
slot atomically, on the Redis server's clock so workers with skewed clocks still agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from enum import IntEnum

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from service import keys
from service.config import FetchConfig

log = logging.getLogger(__name__)

# Returns {verdict, wait_ms}. verdict: 0 granted, 1 host paused, 2 no free slot, 3 rate limited.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause = redis.call('PTTL', KEYS[3])
if pause > 0 then return {1, pause} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {2, math.min(tonumber(first[2]) - now, 100)}
end
local per_ms = tonumber(ARGV[3]) / 60000
local capacity = math.max(1, tonumber(ARGV[3]) / 6)
local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or capacity
local ts = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
if tokens < 1 then return {3, math.ceil((1 - tokens) / per_ms)} end
redis.call('HSET', KEYS[2], 'tokens', tokens - 1, 'ts', now)
redis.call('PEXPIRE', KEYS[2], 120000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {0, 0}
"""


class Verdict(IntEnum):
    GRANTED = 0
    PAUSED = 1
    BUSY = 2
    RATE_LIMITED = 3


@dataclass(frozen=True)
class Slot:
    host: str
    token: str


@dataclass(frozen=True)
class Deferred:
    """The host cannot take a request for ``wait_seconds``: come back later, no request made."""

    host: str
    verdict: Verdict
    wait_seconds: float


class HostBudget:
    def __init__(self, redis: Redis, config: FetchConfig, *, max_wait_seconds: float = 5.0):
        self.redis = redis
        self.config = config
        self.max_wait_seconds = max_wait_seconds
        # A slot outlives the longest request (every redirect hop timing out) and then expires.
        self.slot_ms = int(config.timeout_seconds * (config.max_redirects + 1) * 1000) + 5000
        self._sha: str | None = None

    def acquire_args(self, host: str) -> tuple[list[str], list[object], str]:
        token = uuid.uuid4().hex
        return list(keys.host_budget(host)), [token, self.config.host_concurrency, self.config.host_requests_per_minute, self.slot_ms], token

    async def try_acquire(self, host: str) -> tuple[Verdict, float, Slot | None]:
        keys_, args, token = self.acquire_args(host)
        if self._sha is None:
            self._sha = await self.redis.script_load(ACQUIRE)
        try:
            verdict, wait_ms = await self.redis.evalsha(self._sha, len(keys_), *keys_, *args)
        except NoScriptError:  # the server restarted or was flushed of scripts
            self._sha = None
            return await self.try_acquire(host)
        verdict = Verdict(int(verdict))
        return verdict, max(int(wait_ms), 0) / 1000, Slot(host, token) if verdict is Verdict.GRANTED else None

    async def acquire(self, host: str, first: tuple[Verdict, float] | None = None, token: str | None = None) -> Slot | Deferred:
        """A slot on ``host``, waiting briefly; a longer wait (a pause, a rate limit) defers.

        ``first``/``token`` carry the verdict of an acquire already sent in a pipeline.
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

    def release_into(self, pipe: Redis, slot: Slot) -> None:
        pipe.zrem(keys.host_budget(slot.host)[0], slot.token)

    async def release(self, slot: Slot) -> None:
        await self.redis.zrem(keys.host_budget(slot.host)[0], slot.token)

    def pause_into(self, pipe: Redis, host: str, seconds: float) -> None:
        """Pause every source on ``host`` (a Retry-After); a longer pause already set stays."""
        if seconds > 0:
            pipe.eval(_PAUSE, 1, keys.host_budget(host)[2], int(math.ceil(seconds * 1000)))

    async def pause(self, host: str, seconds: float) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            self.pause_into(pipe, host, seconds)
            await pipe.execute()

    async def paused_for(self, host: str) -> float:
        ttl = await self.redis.pttl(keys.host_budget(host)[2])
        return max(ttl, 0) / 1000


_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""
