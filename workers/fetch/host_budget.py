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
from typing import Any

from redis.asyncio import Redis

from service import keys
from service.config import FetchConfig
from workers.fetch.redis_batch import ScriptBatcher

log = logging.getLogger(__name__)

# acquire() returns {verdict, wait_ms}. verdict: 0 granted, 1 host paused, 2 no free slot, 3 rate limited.
_ACQUIRE_FUNCTION = """
local function acquire(active, rate, pause, token, concurrency, per_minute, slot_ms)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local paused = redis.call('PTTL', pause)
  if paused > 0 then return {1, paused} end
  redis.call('ZREMRANGEBYSCORE', active, '-inf', now)
  if redis.call('ZCARD', active) >= concurrency then
    local first = redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')
    return {2, math.min(tonumber(first[2]) - now, 100)}
  end
  local per_ms = per_minute / 60000
  local capacity = math.max(1, per_minute / 6)
  local bucket = redis.call('HMGET', rate, 'tokens', 'ts')
  local tokens = tonumber(bucket[1]) or capacity
  local ts = tonumber(bucket[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
  if tokens < 1 then return {3, math.ceil((1 - tokens) / per_ms)} end
  redis.call('HSET', rate, 'tokens', tostring(tokens - 1), 'ts', now)
  redis.call('PEXPIRE', rate, 120000)
  redis.call('ZADD', active, now + slot_ms, token)
  redis.call('PEXPIRE', active, slot_ms)
  return {0, 0}
end
"""

ACQUIRE = (
    _ACQUIRE_FUNCTION
    + """
return acquire(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

# The start of a poll in one round trip: take the source's lease, read its state, take a slot
# on the host of its configured URL. Returns {0} when another poll holds the lease, else
# {1, state or nil, verdict, wait_ms}.
BEGIN_POLL = (
    _ACQUIRE_FUNCTION
    + """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local state = redis.call('GET', KEYS[2])
local verdict = acquire(KEYS[3], KEYS[4], KEYS[5], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return {1, state, verdict[1], verdict[2]}
"""
)


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
        self._batcher = ScriptBatcher(redis)

    async def run(self, script: str, keys_: list[str], args: list[object]) -> Any:
        """EVALSHA, batched with the concurrent calls of other polls (one pipeline per turn)."""
        return await self._batcher.run(script, keys_, args)

    def _limits(self) -> list[object]:
        return [self.config.host_concurrency, self.config.host_requests_per_minute, self.slot_ms]

    async def try_acquire(self, host: str) -> tuple[Verdict, float, Slot | None]:
        token = uuid.uuid4().hex
        verdict, wait_ms = await self.run(ACQUIRE, list(keys.host_budget(host)), [token, *self._limits()])
        verdict = Verdict(int(verdict))
        return verdict, max(int(wait_ms), 0) / 1000, Slot(host, token) if verdict is Verdict.GRANTED else None

    async def begin_poll(
        self, lease_key: str, lease_token: str, lease_ms: int, state_key: str, host: str
    ) -> tuple[bool, bytes | None, tuple[Verdict, float], str]:
        """Lease + state + a host slot in one round trip: (leased, raw state, verdict, slot token)."""
        token = uuid.uuid4().hex
        reply = await self.run(
            BEGIN_POLL, [lease_key, state_key, *keys.host_budget(host)], [lease_token, lease_ms, token, *self._limits()]
        )
        if not int(reply[0]):
            return False, None, (Verdict.BUSY, 0.0), token
        return True, reply[1], (Verdict(int(reply[2])), max(int(reply[3]), 0) / 1000), token

    async def acquire(
        self, host: str, first: tuple[Verdict, float] | None = None, token: str | None = None
    ) -> Slot | Deferred:
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
        ttl = int(await self.redis.pttl(keys.host_budget(host)[2]))
        return max(ttl, 0) / 1000


_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""
