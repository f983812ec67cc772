"""The one owner of source state: every read, write and Lua script touching a source's state,
the schedule and the disabled set.

- ``source:{id}:state``: :class:`SourceState` as JSON.
- ``schedule``: zset source id -> next due time (unix seconds). Claiming takes the due sources
  and moves each to ``now + lease`` in one Lua call: no other worker can claim it for this due
  time, and if the worker that claimed it dies, the lease passes, the source is due again and
  another worker takes it over. The claimed score travels with the job as its claim token; a
  job whose claim no longer holds (superseded, or lapsed before the job started) does nothing,
  and a poll that begins renews its claim for its lease, so no second job is handed the source
  while it is being polled.
- ``disabled``: set of source ids kept off the schedule (410 Gone, too many failures, an
  operator) until a success or an operator re-enables them.
- ``source:{id}:push``, ``push:due``: the subscription to the feed's WebSub hub, read with the
  state (:attr:`SourceState.push`) but stored apart (:mod:`service.store.push_state`, why there).

A poll costs two calls here: :meth:`SourceStates.begin_poll` (take the lease, read the state and
its subscription, take a host slot) and :meth:`SourceStates.end_poll` (everything the poll
decided, at once, a change of the subscription included).
Both go through a :class:`ScriptBatcher`, so concurrent polls share one pipeline per loop turn.
The web side and the CLI read and steer sources through the same class.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.errors import WriteConflict
from service.models import PollRecord, SourceState
from service.store.host_slots import ACQUIRE_FUNCTION, HostLimits, Slot, Verdict
from service.store.push_state import TRANSITION_FUNCTION, PushStates, PushTransition, read_push
from service.store.script_batch import ScriptBatcher

log = logging.getLogger(__name__)

# KEYS: lease, state, host active, host rate, host pause, schedule, push. ARGV: lease token, lease
# ms, slot token, HostLimits.args(), claim ('' for none), source id, now, the claim renewed until.
# Returns {0} when another poll holds the lease, {2} when the claim was superseded or has lapsed,
# else {1, state or nil, verdict, wait_ms, the push hash as a flat list}.
_BEGIN_POLL = (
    ACQUIRE_FUNCTION
    + """
if ARGV[7] ~= '' then
  if redis.call('ZSCORE', KEYS[6], ARGV[8]) ~= ARGV[7] or tonumber(ARGV[7]) <= tonumber(ARGV[9]) then return {2} end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[6], ARGV[10], ARGV[8]) end
local state = redis.call('GET', KEYS[2])
local verdict = acquire(KEYS[3], KEYS[4], KEYS[5], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return {1, state, verdict[1], verdict[2], redis.call('HGETALL', KEYS[7])}
"""
)

# KEYS: lease, state, schedule, disabled, push, push due, poll history, paused hosts, one host
# active zset per slot, then the pause key if any. ARGV: lease token, state JSON ('' keeps the
# stored one), schedule mode, source id, due time, claim, pause ms, slot count, poll record (''
# for none), history length, host, pause end, one token per slot, then a push transition (none:
# nothing).
_END_POLL = (
    TRANSITION_FUNCTION
    + """
local slots = tonumber(ARGV[8])
for i = 1, slots do redis.call('ZREM', KEYS[8 + i], ARGV[12 + i]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
local mode = ARGV[3]
if mode == 'set' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
elseif mode == 'claim' then
  if redis.call('ZSCORE', KEYS[3], ARGV[4]) == ARGV[6] then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
elseif mode == 'disable' then
  redis.call('SADD', KEYS[4], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
elseif mode == 'enable' then
  redis.call('SREM', KEYS[4], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
if ARGV[9] ~= '' then
  redis.call('LPUSH', KEYS[7], ARGV[9])
  redis.call('LTRIM', KEYS[7], 0, tonumber(ARGV[10]) - 1)
end
local pause = tonumber(ARGV[7])
if pause > 0 then
  local key = KEYS[9 + slots]
  if redis.call('PTTL', key) < pause then
    redis.call('SET', key, '1', 'PX', pause)
    redis.call('ZADD', KEYS[8], ARGV[12], ARGV[11])
  end
end
if #ARGV > 12 + slots then push_transition(KEYS[5], KEYS[6], ARGV[4], ARGV, 13 + slots) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
)

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

POLL_HISTORY = 50
"""Polls kept per source (``source:{id}:polls``)."""

MAX_STEER_TRIES = 50
"""Optimistic tries of an operator's change before giving up (:class:`WriteConflict`)."""


class Claim(NamedTuple):
    source_id: str
    token: str
    """The claimed score as Redis prints it; the claim holds while the score is unchanged."""


class Refusal(StrEnum):
    """Why a poll could not begin."""

    LEASED = "leased"  # another poll of the source holds its lease
    CLAIM_LAPSED = "claim_lapsed"  # the claim was superseded, or its lease ran out before the job started


@dataclass(frozen=True)
class PollStart:
    """What the first call of a poll found: the stored state and the host's first verdict."""

    state: SourceState
    verdict: Verdict
    wait_seconds: float
    slot_token: str
    """The token of the slot taken when ``verdict`` is GRANTED."""
    claim: str | None = None
    """The dispatcher's claim, renewed for the poll's lease: the token its end reschedules with."""


@dataclass(frozen=True)
class Reschedule:
    at: datetime
    claim: str | None = None
    """With a claim, only while that claim still holds (another worker may have taken over)."""


@dataclass(frozen=True)
class Disable:
    """Off the schedule, into the disabled set (the reason is in the state)."""


@dataclass(frozen=True)
class Enable:
    at: datetime


ScheduleChange = Reschedule | Disable | Enable


@dataclass(frozen=True)
class HostPause:
    host: str
    seconds: float
    since: datetime


@dataclass
class PollEnd:
    """Everything a poll leaves behind, written by :meth:`SourceStates.end_poll` in one call.

    Filled in as the poll goes (a slot taken is recorded at once, so it is freed whatever happens
    next); fields left empty change nothing.
    """

    source_id: str
    lease_token: str
    slots: list[Slot] = field(default_factory=list)
    state: SourceState | None = None
    """Stored without its ``push``: a subscription changes only by :attr:`push`."""
    schedule: ScheduleChange | None = None
    pause: HostPause | None = None
    push: PushTransition | None = None
    record: PollRecord | None = None
    """The poll as its history keeps it (only polls that asked the publisher)."""


def state_json(state: SourceState) -> str:
    """The stored form: the subscription lives under its own key (:mod:`service.store.push_state`)."""
    return state.model_dump_json(exclude={"push"})


def read_state(source_id: str, raw: bytes | str | None) -> SourceState:
    """A stored state this version cannot read is logged and started afresh, not a stuck source."""
    if not raw:
        return SourceState()
    try:
        return SourceState.model_validate_json(raw)
    except ValidationError as exc:
        log.error("%s: unreadable source state, starting afresh: %s", source_id, exc)
        return SourceState()


def claim_token(score: float) -> str:
    """Redis returns zset scores as shortest round-trip strings; match that form exactly."""
    return repr(float(score)) if score != int(score) else str(int(score))


class SourceStates:
    def __init__(self, redis: Redis, batcher: ScriptBatcher | None = None):
        self.redis = redis
        self.batcher = batcher or ScriptBatcher(redis)
        self.push = PushStates(redis)
        """The subscriptions to publishers' hubs (the web side records deliveries through it)."""

    # -- reading -----------------------------------------------------------------------------

    async def get(self, source_id: str) -> SourceState:
        return (await self.get_many([source_id]))[source_id]

    async def get_many(self, source_ids: Sequence[str]) -> dict[str, SourceState]:
        """The states of ``source_ids``, subscriptions included, in one round trip (never
        stored: a fresh state)."""
        if not source_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.mget([keys.source_state(s) for s in source_ids])
            for source_id in source_ids:
                pipe.hgetall(keys.source_push(source_id))
            raws, *pushes = await pipe.execute()
        states = {}
        for source_id, raw, push in zip(source_ids, raws, pushes, strict=True):
            state = read_state(source_id, raw)
            state.push = read_push(source_id, push)
            states[source_id] = state
        return states

    async def is_disabled(self, source_id: str) -> bool:
        return bool(await self.redis.sismember(keys.DISABLED, source_id))

    # -- an operator steering a source -------------------------------------------------------

    async def enable(self, source_id: str, now: datetime) -> str | None:
        """Put a disabled source back on the schedule, due now, its failures forgotten (a paused
        source stays off it until resumed).

        Returns why it was disabled, or None when it was not.
        """

        def change(state: SourceState) -> tuple[SourceState, Enable | Disable]:
            update: dict[str, object] = {
                "disabled": False,
                "disabled_reason": None,
                "disabled_at": None,
                "consecutive_failures": 0,
                "failing_since": None,
            }
            if state.paused:
                return state.model_copy(update=update), Disable()
            return state.model_copy(update={**update, "next_poll": now, "next_poll_reason": "enabled"}), Enable(now)

        before, was_listed = await self._steer(source_id, change)
        if before.disabled or (was_listed and not before.paused):
            return before.disabled_reason or "no reason recorded"
        return None

    async def disable(self, source_id: str, reason: str, now: datetime) -> None:
        """Take a source off the schedule until re-enabled; it stays configured and listed."""
        update = {
            "disabled": True,
            "disabled_reason": reason,
            "disabled_at": now,
            "next_poll": None,
            "next_poll_reason": "disabled",
        }
        await self._steer(source_id, lambda state: (state.model_copy(update=update), Disable()))

    async def pause(self, source_id: str) -> bool:
        """An operator takes the source off the schedule until :meth:`resume`; False if it already was."""
        update = {"paused": True, "next_poll": None, "next_poll_reason": "paused"}
        before, _ = await self._steer(source_id, lambda state: (state.model_copy(update=update), Disable()))
        return not before.paused

    async def resume(self, source_id: str, now: datetime) -> bool:
        """Undo :meth:`pause`: due now (unless it is also disabled); False if it was not paused."""

        def change(state: SourceState) -> tuple[SourceState, Enable | Disable]:
            if state.disabled:
                return state.model_copy(update={"paused": False, "next_poll_reason": "disabled"}), Disable()
            update = {"paused": False, "next_poll": now, "next_poll_reason": "resumed"}
            return state.model_copy(update=update), Enable(now)

        before, _ = await self._steer(source_id, change)
        return before.paused

    async def _steer(
        self, source_id: str, change: Callable[[SourceState], tuple[SourceState, Enable | Disable]]
    ) -> tuple[SourceState, bool]:
        """Change the state with the schedule, retried while a poll writes meanwhile.

        Returns the state before and whether the source was in the disabled set.
        """
        state_key = keys.source_state(source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_STEER_TRIES):
                try:
                    await pipe.watch(state_key, keys.DISABLED)
                    before = read_state(source_id, await pipe.get(state_key))
                    was_listed = bool(await pipe.sismember(keys.DISABLED, source_id))
                    after, schedule = change(before)
                    pipe.multi()
                    pipe.set(state_key, state_json(after))
                    if isinstance(schedule, Enable):
                        pipe.srem(keys.DISABLED, source_id)
                        pipe.zadd(keys.SCHEDULE, {source_id: schedule.at.timestamp()})
                    else:
                        pipe.sadd(keys.DISABLED, source_id)
                        pipe.zrem(keys.SCHEDULE, source_id)
                    await pipe.execute()
                    return before, was_listed
                except WatchError:
                    continue
        raise WriteConflict(f"{source_id}: its state kept changing while being steered; try again")

    # -- the schedule ------------------------------------------------------------------------

    async def sync_schedule(self, source_ids: Iterable[str], now: datetime) -> None:
        """New sources become due now, known ones keep their time, removed ones are dropped
        and unsubscribed from their hubs (:meth:`PushStates.leave`).

        Disabled sources stay off the schedule until re-enabled.
        """
        configured = set(source_ids)
        for source_id in await self.push.subscribed_sources() - configured:
            await self.push.leave(source_id, now)
        wanted = configured - {m.decode() for m in await self.redis.smembers(keys.DISABLED)}
        scheduled = {m.decode() for m in await self.redis.zrange(keys.SCHEDULE, 0, -1)}
        async with self.redis.pipeline(transaction=True) as pipe:
            if wanted:
                pipe.zadd(keys.SCHEDULE, {sid: now.timestamp() for sid in wanted}, nx=True)
            if scheduled - wanted:
                pipe.zrem(keys.SCHEDULE, *(scheduled - wanted))
            await pipe.execute()

    async def schedule_new(self, source_ids: Iterable[str], now: datetime) -> None:
        """Sources not on the schedule (nor off it) become due now; the others keep their time."""
        off = await self.disabled_ids()
        wanted = {sid: now.timestamp() for sid in source_ids if sid not in off}
        if wanted:
            await self.redis.zadd(keys.SCHEDULE, wanted, nx=True)

    async def unschedule(self, source_id: str) -> None:
        """A removed source leaves the schedule and the disabled set (its state stays)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.SCHEDULE, source_id)
            pipe.srem(keys.DISABLED, source_id)
            await pipe.execute()

    async def claim_due(self, now: datetime, lease_seconds: float, limit: int = 500) -> list[Claim]:
        """Claim up to ``limit`` due sources (their states: :meth:`get_many`, one more round trip)."""
        lease_until = int(now.timestamp() + lease_seconds)
        due = await self.redis.eval(_CLAIM, 1, keys.SCHEDULE, now.timestamp(), lease_until, limit)
        return [Claim(sid.decode(), claim_token(lease_until)) for sid in due]

    async def holds_claim(self, source_id: str, token: str) -> bool:
        score = await self.redis.zscore(keys.SCHEDULE, source_id)
        return score is not None and claim_token(score) == token

    async def poll_soon(self, source_id: str, at: datetime) -> bool:
        """Due no later than ``at`` (a thin ping, a lapsed subscription); a source off the
        schedule (disabled, removed) stays off. Several calls before the poll make one poll."""
        return bool(await self.redis.zadd(keys.SCHEDULE, {source_id: at.timestamp()}, xx=True, lt=True, ch=True))

    async def reschedule(self, source_id: str, at: datetime, token: str | None = None) -> bool:
        """Set the next due time; with a token, only while that claim still holds."""
        if token is None:
            await self.redis.zadd(keys.SCHEDULE, {source_id: at.timestamp()})
            return True
        return bool(await self.redis.eval(_RESCHEDULE, 1, keys.SCHEDULE, source_id, token, at.timestamp()))

    # -- a poll ------------------------------------------------------------------------------

    async def begin_poll(
        self,
        source_id: str,
        lease_token: str,
        lease_ms: int,
        host: str,
        limits: HostLimits,
        *,
        now: datetime,
        claim: str | None = None,
    ) -> PollStart | Refusal:
        """Lease + state + a slot on ``host`` in one call.

        With a ``claim``, only while that claim holds
        and has not lapsed: a job that starts after its claim's lease ran out would poll a
        source the dispatcher has already handed to another job. The claim is then renewed for
        the poll's lease (:attr:`PollStart.claim`), so the dispatcher cannot hand the source on
        while it is being polled; if the worker dies, the renewed claim lapses like any other.
        """
        slot_token = uuid.uuid4().hex
        renewed = str(int(now.timestamp() + lease_ms / 1000)) if claim is not None else None
        reply = await self.batcher.run(
            _BEGIN_POLL,
            [
                keys.poll_lease(source_id),
                keys.source_state(source_id),
                *keys.host_budget(host),
                keys.SCHEDULE,
                keys.source_push(source_id),
            ],
            [
                lease_token,
                lease_ms,
                slot_token,
                *limits.args(),
                claim or "",
                source_id,
                repr(now.timestamp()),
                renewed or "",
            ],
        )
        if int(reply[0]) == 0:
            return Refusal.LEASED
        if int(reply[0]) == 2:
            return Refusal.CLAIM_LAPSED
        state = read_state(source_id, reply[1])
        state.push = read_push(source_id, reply[4])
        return PollStart(state, Verdict(int(reply[2])), max(int(reply[3]), 0) / 1000, slot_token, renewed)

    async def end_poll(self, end: PollEnd) -> None:
        """Free the slots, save the state, move the source in the schedule, pause the host, let
        go of the lease: one atomic call, so no other worker sees a half-finished poll."""
        mode, at, claim = "none", 0.0, ""
        match end.schedule:
            case Reschedule(at=when, claim=None):
                mode, at = "set", when.timestamp()
            case Reschedule(at=when, claim=str(token)):
                mode, at, claim = "claim", when.timestamp(), token
            case Disable():
                mode = "disable"
            case Enable(at=when):
                mode, at = "enable", when.timestamp()
        pause = end.pause if end.pause is not None and end.pause.seconds > 0 else None
        pause_ms = math.ceil(pause.seconds * 1000) if pause is not None else 0
        script_keys = [
            keys.poll_lease(end.source_id),
            keys.source_state(end.source_id),
            keys.SCHEDULE,
            keys.DISABLED,
            keys.source_push(end.source_id),
            keys.PUSH_DUE,
            keys.poll_history(end.source_id),
            keys.PAUSED_HOSTS,
            *(keys.host_budget(slot.host)[0] for slot in end.slots),
        ]
        pause_host, pause_end = "", "0"
        if pause is not None:
            script_keys.append(keys.host_budget(pause.host)[2])
            pause_host, pause_end = pause.host, repr(pause.since.timestamp() + pause.seconds)
        stored = state_json(end.state) if end.state is not None else ""
        record = end.record.model_dump_json(exclude_defaults=True) if end.record is not None else ""
        args: list[object] = [
            end.lease_token,
            stored,
            mode,
            end.source_id,
            repr(at),
            claim,
            pause_ms,
            len(end.slots),
            record,
            POLL_HISTORY,
            pause_host,
            pause_end,
        ]
        push = end.push.args() if end.push is not None else []
        await self.batcher.run(_END_POLL, script_keys, [*args, *(slot.token for slot in end.slots), *push])

    # -- what operators read ------------------------------------------------------------------

    async def history(self, source_id: str, limit: int = POLL_HISTORY) -> list[PollRecord]:
        """The source's newest polls, newest first."""
        raws = await self.redis.lrange(keys.poll_history(source_id), 0, limit - 1)
        return [PollRecord.model_validate_json(raw) for raw in raws]

    async def disabled_ids(self) -> set[str]:
        return {m.decode() for m in await self.redis.smembers(keys.DISABLED)}

    async def schedule(self) -> dict[str, float]:
        """Every scheduled source with its due time (unix seconds)."""
        return {m.decode(): score for m, score in await self.redis.zrange(keys.SCHEDULE, 0, -1, withscores=True)}

    async def paused_hosts(self, now: datetime) -> int:
        """Hosts whose Retry-After pause still runs (older entries are dropped on the way)."""
        await self.redis.zremrangebyscore(keys.PAUSED_HOSTS, "-inf", now.timestamp())
        return int(await self.redis.zcard(keys.PAUSED_HOSTS))
