"""Token buckets in Redis (one per API key, per WebSub client and callback host), so every web
process draws from the same bucket.

One Lua call refills by elapsed time (the Redis server's clock, the same for every process)
and takes a token if there is one. Answers carry what the ``RateLimit-*`` and ``Retry-After``
headers need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

from service import keys

# KEYS: bucket. ARGV: capacity, refill per millisecond. Returns allowed, tokens left, ms to refill.
_TAKE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local last = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
tokens = math.min(capacity, tokens + math.max(0, now - last) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int  # requests per window
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after_seconds: int  # until one request is allowed (0 when allowed)
    window_seconds: int = 60


async def take(redis: Redis, key_name: str, per_minute: int, burst: int | None = None) -> RateDecision:
    """A token from the API key's bucket."""
    return await take_from(redis, keys.rate_bucket(key_name), per_minute, burst)


async def take_from(redis: Redis, bucket: str, per_minute: int, burst: int | None = None) -> RateDecision:
    """A token from the bucket at Redis key ``bucket`` (built in :mod:`service.keys`)."""
    capacity = burst or per_minute
    rate = per_minute / 60_000
    allowed, tokens_text = await redis.eval(_TAKE, 1, bucket, capacity, repr(rate))
    tokens = float(tokens_text)
    return RateDecision(
        allowed=bool(allowed),
        limit=capacity,
        remaining=int(tokens),
        reset_seconds=math.ceil((capacity - tokens) / rate / 1000),
        retry_after_seconds=0 if allowed else max(1, math.ceil((1 - tokens) / rate / 1000)),
    )
