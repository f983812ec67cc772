"""The Redis side of a host's politeness budget: the Lua that decides and takes a request slot.

Per host (keys in :func:`service.keys.host_budget`): a zset of in-flight slot tokens scored by
their expiry (a worker killed mid-request frees its slot when the score passes), a token bucket
holding up to ten seconds' worth of requests, and a pause key a ``Retry-After`` sets. The
decision runs on the Redis server's clock so workers with skewed clocks still agree.

Shared by the host budget (:mod:`workers.fetch.host_budget`, which decides how long to wait)
and the start of a poll (:mod:`service.store.source_state`, which takes a slot in the same
call as the lease).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from enum import IntEnum

# acquire() returns {verdict, wait_ms}; verdict as in Verdict. ``now``: server_ms(), read once
# per script (a script runs atomically: its polls may as well share one instant).
ACQUIRE_FUNCTION = """
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function acquire(now, active, rate, pause, token, concurrency, per_minute, slot_ms)
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

# KEYS: active, rate, pause (keys.host_budget). ARGV: slot token, then HostLimits.args().
ACQUIRE = (
    ACQUIRE_FUNCTION
    + """
return acquire(server_ms(), KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]))
"""
)

# KEYS: pause. ARGV: milliseconds. A longer pause already set stays.
PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


_token_prefix = os.urandom(12).hex()
_token_count = itertools.count()


def _new_token_prefix() -> None:
    global _token_prefix, _token_count
    _token_prefix, _token_count = os.urandom(12).hex(), itertools.count()


os.register_at_fork(after_in_child=_new_token_prefix)  # a forked worker draws its own


def new_token() -> str:
    """A token no other holder of a slot or lease uses: this process's random prefix and a count.

    As unique as ``uuid4().hex`` at a fraction of its cost (two per poll).
    """
    return f"{_token_prefix}{next(_token_count):x}"


class Verdict(IntEnum):
    GRANTED = 0
    PAUSED = 1
    BUSY = 2
    RATE_LIMITED = 3


# Not frozen: built for every poll, and a frozen dataclass's __init__ costs about three
# times a plain one's.
@dataclass(slots=True)
class Slot:
    """One request slot taken on ``host``; freed by removing ``token`` (or by its expiry)."""

    host: str
    token: str


@dataclass(frozen=True)
class HostLimits:
    concurrency: int
    per_minute: int
    slot_ms: int
    """How long a slot outlives its taking if never freed (a worker killed mid-request)."""

    def args(self) -> list[object]:
        return [self.concurrency, self.per_minute, self.slot_ms]
