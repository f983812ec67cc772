"""The Redis side of our subscriptions to publishers' WebSub hubs: part of the source state,
reached through :class:`service.store.source_state.SourceStates` (``Store.sources.push``).

- ``source:{id}:push``: hash, one field per :class:`PushSubscription` field (times ISO 8601,
  counters as integers). It is a key of its own, not a member of the state JSON, because the
  web process records deliveries while a poll holds the state: a poll ends by writing its whole
  state, which would drop a delivery counted between its begin and its end. Every change here
  is one Lua call that touches only the fields it names (counters by ``HINCRBY``), so the web
  side, the poll and the subscription jobs never lose one another's writes.
- ``push:callback:{id}``: the source a callback URL belongs to. A stale mapping is harmless:
  the callback is honoured only while the source's hash names that id.
- ``push:due``: zset source id -> when the subscription next needs a look (renewal, a retry, the
  end of a fallback, an unanswered request). Every stored subscription has an entry, so it
  also lists the sources that have one.

Whether a change applies is decided by :mod:`service.push.lifecycle` (pure); this module only
writes it, atomically and conditionally (:class:`PushTransition`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from service import keys
from service.models import PushStatus, PushSubscription

log = logging.getLogger(__name__)

FieldValue = str | int | datetime | PushStatus | None

# A Lua function shared by every writer of the hash (the poll's end included). Arguments from
# ``args[offset]`` on, as :meth:`PushTransition.args` lays them out: allowed statuses (CSV, ''
# any), required id ('' any), then counts and pairs of fields to set, delete and increment,
# then the due time ('' leaves it). Returns 1 when applied, 0 when the condition failed.
TRANSITION_FUNCTION = """
local function push_transition(hash, due, source_id, args, offset)
  local i = offset
  local statuses, want_id = args[i], args[i + 1]
  i = i + 2
  if statuses ~= '' then
    local status = redis.call('HGET', hash, 'status')
    if not status or not string.find(',' .. statuses .. ',', ',' .. status .. ',', 1, true) then return 0 end
  end
  if want_id ~= '' and redis.call('HGET', hash, 'id') ~= want_id then return 0 end
  local n = tonumber(args[i]); i = i + 1
  for j = 0, n - 1 do redis.call('HSET', hash, args[i + 2 * j], args[i + 2 * j + 1]) end
  i = i + 2 * n
  n = tonumber(args[i]); i = i + 1
  for j = 0, n - 1 do redis.call('HDEL', hash, args[i + j]) end
  i = i + n
  n = tonumber(args[i]); i = i + 1
  for j = 0, n - 1 do redis.call('HINCRBY', hash, args[i + 2 * j], args[i + 2 * j + 1]) end
  i = i + 2 * n
  if args[i] ~= '' then redis.call('ZADD', due, args[i], source_id) end
  return 1
end
"""

_APPLY = TRANSITION_FUNCTION + "\nreturn push_transition(KEYS[1], KEYS[2], ARGV[1], ARGV, 2)\n"

# KEYS: hash, due, mapping. ARGV: source id, callback id ('' for an attempt without one). Forgets
# the subscription only while that is still its attempt (else a newer one took its place).
_FORGET = """
if (redis.call('HGET', KEYS[1], 'id') or '') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
"""

_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, sid in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], sid) end
return due
"""

ATTEMPT_FIELDS = (
    "id",
    "secret",
    "requested_at",
    "verified_at",
    "active_since",
    "lease_seconds",
    "lease_end",
    "retry_at",
    "fallback_until",
    "error",
)
"""Fields that belong to one attempt at subscribing; a new attempt starts without them."""

LIVE_AT_HUB = frozenset({PushStatus.PENDING, PushStatus.ACTIVE, PushStatus.FALLBACK})
"""Statuses in which the hub may hold (or be about to verify) our subscription."""


@dataclass(frozen=True)
class PushTransition:
    """One atomic change of a source's subscription, applied only while it is as expected."""

    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    """Fields to set; None deletes the field."""
    incr: Mapping[str, int] = field(default_factory=dict)
    when_status: frozenset[PushStatus] = frozenset()
    """Apply only in one of these statuses (empty: whatever it is, or none yet)."""
    when_id: str | None = None
    """Apply only while this is the current attempt's callback id."""
    due: datetime | None = None
    """When the subscription needs its next look (None: unchanged)."""

    def args(self) -> list[str]:
        sets = [(k, _encode(v)) for k, v in self.fields.items() if v is not None]
        deletes = [k for k, v in self.fields.items() if v is None]
        out = [",".join(sorted(self.when_status)), self.when_id or "", str(len(sets))]
        for name, value in sets:
            out += [name, value]
        out += [str(len(deletes)), *deletes, str(len(self.incr))]
        for name, by in self.incr.items():
            out += [name, str(by)]
        out.append(repr(self.due.timestamp()) if self.due is not None else "")
        return out


def _encode(value: FieldValue) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, PushStatus):
        return value.value
    return str(value)


def read_push(source_id: str, raw: Mapping[bytes, bytes] | Sequence[bytes] | None) -> PushSubscription | None:
    """The subscription from ``HGETALL`` (a mapping, or the flat list Lua returns); None when
    there is none. A hash this version cannot read is logged and treated as none."""
    if not raw:
        return None
    if isinstance(raw, Mapping):
        pairs: Iterable[tuple[bytes, bytes]] = raw.items()
    else:
        pairs = zip(raw[::2], raw[1::2], strict=True)
    data: dict[str, Any] = {_text(k): _text(v) for k, v in pairs}
    try:
        return PushSubscription.model_validate(data)
    except ValidationError as exc:
        log.error("%s: unreadable push subscription, ignored: %s", source_id, exc)
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PushStates:
    """Reads and conditional writes of subscriptions; ``mapping_ttl`` outlives any lease."""

    def __init__(self, redis: Redis, mapping_ttl_seconds: int = 400 * 86400):
        self.redis = redis
        self.mapping_ttl_seconds = mapping_ttl_seconds

    async def get(self, source_id: str) -> PushSubscription | None:
        return read_push(source_id, await self.redis.hgetall(keys.source_push(source_id)))

    async def get_many(self, source_ids: Sequence[str]) -> dict[str, PushSubscription | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.hgetall(keys.source_push(source_id))
            raws = await pipe.execute()
        return {s: read_push(s, raw) for s, raw in zip(source_ids, raws, strict=True)}

    async def by_callback(self, callback_id: str) -> tuple[str, PushSubscription] | None:
        """The source and subscription a callback URL names, while it is the current attempt."""
        source_id = await self.redis.get(keys.push_callback(callback_id))
        if source_id is None:
            return None
        push = await self.get(source_id.decode())
        if push is None or push.id != callback_id:
            return None
        return source_id.decode(), push

    async def apply(self, source_id: str, change: PushTransition, *, link: str | None = None) -> bool:
        """Apply ``change`` if its condition holds; ``link`` maps that callback id to the source
        first (harmless if the change then does not apply: the hash decides)."""
        if link is not None:
            await self.redis.set(keys.push_callback(link), source_id, ex=self.mapping_ttl_seconds)
        applied = await self.redis.eval(
            _APPLY, 2, keys.source_push(source_id), keys.PUSH_DUE, source_id, *change.args()
        )
        return bool(applied)

    async def forget(self, source_id: str, callback_id: str | None) -> bool:
        """Drop the subscription (unsubscribed, or the source left); with a callback id, only
        while it is still that attempt."""
        script_keys = [keys.source_push(source_id), keys.PUSH_DUE, keys.push_callback(callback_id or "")]
        return bool(await self.redis.eval(_FORGET, 3, *script_keys, source_id, callback_id or ""))

    async def leave(self, source_id: str, now: datetime) -> bool:
        """The source is gone (removed from the config, or by an operator at run time): a
        subscription the hub may hold is unsubscribed by the next maintenance job; one it cannot
        hold is forgotten at once. Returns whether there was one. Call it wherever sources leave.
        """
        push = await self.get(source_id)
        if push is None:
            return False
        if push.id and push.status in LIVE_AT_HUB:
            leaving = PushTransition(
                fields={"status": PushStatus.UNSUBSCRIBING, "requested_at": None}, when_id=push.id, due=now
            )
            if await self.apply(source_id, leaving):
                return True
        await self.forget(source_id, push.id)
        return True

    async def subscribed_sources(self) -> set[str]:
        return {m.decode() for m in await self.redis.zrange(keys.PUSH_DUE, 0, -1)}

    async def claim_due(self, now: datetime, lease_seconds: float, limit: int = 100) -> list[str]:
        """Sources whose subscription needs a look now, each moved to ``now + lease`` so one
        worker takes it; the job that looks sets the real next time (a dead job's lease lapses)."""
        due = await self.redis.eval(
            _CLAIM_DUE, 1, keys.PUSH_DUE, now.timestamp(), now.timestamp() + lease_seconds, limit
        )
        return [sid.decode() for sid in due]
