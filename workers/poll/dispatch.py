"""The schedule in Redis: which sources are due, and claiming them exactly once across workers.

``schedule`` is a zset source id -> due time. Claiming is one Lua call that takes the due
sources and moves each to ``now + lease``: no other worker can claim it for this due time, and
if the worker that claimed it dies, the lease time passes, the source is due again and another
worker takes it over. The claimed score travels with the job as its claim token; a job whose
token no longer matches (its claim was superseded) does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from redis.asyncio import Redis

from service import keys

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, sid in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], sid) end
return due
"""

_RESCHEDULE = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


async def sync_schedule(redis: Redis, source_ids: Iterable[str], now: datetime) -> None:
    """New sources become due now, known ones keep their time, removed ones are dropped.

    Disabled sources (see :func:`disable`) stay off the schedule until re-enabled.
    """
    wanted = set(source_ids) - {m.decode() for m in await redis.smembers(keys.DISABLED)}
    scheduled = {m.decode() for m in await redis.zrange(keys.SCHEDULE, 0, -1)}
    async with redis.pipeline(transaction=True) as pipe:
        if wanted:
            pipe.zadd(keys.SCHEDULE, {sid: now.timestamp() for sid in wanted}, nx=True)
        if scheduled - wanted:
            pipe.zrem(keys.SCHEDULE, *(scheduled - wanted))
        await pipe.execute()


def claim_token(score: float) -> str:
    """Redis returns zset scores as shortest round-trip strings; match that form exactly."""
    return repr(float(score)) if score != int(score) else str(int(score))


async def claim_due(redis: Redis, now: datetime, lease_seconds: float, limit: int = 500) -> list[tuple[str, str]]:
    """Claim up to ``limit`` due sources; returns (source id, claim token) pairs."""
    lease_until = int(now.timestamp() + lease_seconds)
    due = await redis.eval(_CLAIM, 1, keys.SCHEDULE, now.timestamp(), lease_until, limit)
    return [(sid.decode(), claim_token(lease_until)) for sid in due]


async def holds_claim(redis: Redis, source_id: str, token: str) -> bool:
    score = await redis.zscore(keys.SCHEDULE, source_id)
    return score is not None and claim_token(score) == token


async def reschedule(redis: Redis, source_id: str, at: datetime, token: str | None = None) -> bool:
    """Set the next due time; with a token, only while that claim still holds."""
    if token is None:
        await redis.zadd(keys.SCHEDULE, {source_id: at.timestamp()})
        return True
    return bool(await redis.eval(_RESCHEDULE, 1, keys.SCHEDULE, source_id, token, at.timestamp()))


def disable_into(pipe: Redis, source_id: str) -> None:
    """Take the source off the schedule; it stays configured and listed."""
    pipe.sadd(keys.DISABLED, source_id)
    pipe.zrem(keys.SCHEDULE, source_id)


def enable_into(pipe: Redis, source_id: str, at: datetime) -> None:
    pipe.srem(keys.DISABLED, source_id)
    pipe.zadd(keys.SCHEDULE, {source_id: at.timestamp()})


async def is_disabled(redis: Redis, source_id: str) -> bool:
    return bool(await redis.sismember(keys.DISABLED, source_id))
