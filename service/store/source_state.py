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

A poll costs two calls here: :meth:`SourceStates.begin_polls` (take the lease, read the state and,
if the poll may subscribe, its subscription, take a host slot; the polls begun together share
the call) and :meth:`SourceStates.end_poll` (everything the poll decided, at once, a change of
the subscription included; the ends handed in during one event-loop turn share the call).
Every call goes through a :class:`ScriptBatcher`, so concurrent callers share one pipeline per
loop turn.
The web side and the CLI read and steer sources through the same class.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.errors import WriteConflict
from service.models import PollRecord, SourceState
from service.store.host_slots import ACQUIRE_FUNCTION, HostLimits, Slot, Verdict, new_token
from service.store.push_state import TRANSITION_FUNCTION, PushStates, PushTransition, read_push
from service.store.script_batch import Coalescer, ScriptBatcher
from service.store.stored_state import WrittenStates, read_state, state_json

FIELD_SEPARATOR = "\x1f"
"""Joins a poll's scalar arguments into one (ids, tokens, numbers, host names: none holds it)."""

SPLIT_FUNCTION = """
local function split(joined)
  local fields, start = {}, 1
  while true do
    local stop = string.find(joined, '\\31', start, true)
    if not stop then
      fields[#fields + 1] = string.sub(joined, start)
      return fields
    end
    fields[#fields + 1] = string.sub(joined, start, stop - 1)
    start = stop + 1
  end
end
"""

# Many polls' beginnings in one call. KEYS: schedule, then per poll: lease, state, host active,
# host rate, host pause, push. ARGV: one per poll, its fields joined by FIELD_SEPARATOR (fewer
# arguments to pack: hiredis formats each with sprintf): lease token, lease ms, slot token,
# HostLimits.args() (3), claim ('' for none), source id, now, the claim renewed until, '1' to
# read the push hash ('' when the poll has no use for it).
# Returns per poll {0} when another poll holds the lease, {2} when the claim was superseded or
# has lapsed, else {1, state or nil, verdict, wait_ms, the push hash as a flat list}.
_BEGIN_POLLS = (
    ACQUIRE_FUNCTION
    + SPLIT_FUNCTION
    + """
local out = {}
local now = nil
for i = 0, (#KEYS - 1) / 6 - 1 do
  local k, f = 1 + 6 * i, split(ARGV[i + 1])
  local claim, sid = f[7], f[8]
  if claim ~= '' and (redis.call('ZSCORE', KEYS[1], sid) ~= claim or tonumber(claim) <= tonumber(f[9])) then
    out[i + 1] = {2}
  elseif not redis.call('SET', KEYS[k + 1], f[1], 'NX', 'PX', f[2]) then
    out[i + 1] = {0}
  else
    if claim ~= '' then redis.call('ZADD', KEYS[1], f[10], sid) end
    local state = redis.call('GET', KEYS[k + 2])
    now = now or server_ms()
    local verdict = acquire(now, KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], f[3],
      tonumber(f[4]), tonumber(f[5]), tonumber(f[6]))
    local push = {}
    if f[11] ~= '' then push = redis.call('HGETALL', KEYS[k + 6]) end
    out[i + 1] = {1, state, verdict[1], verdict[2], push}
  end
end
return out
"""
)

# Many polls' ends in one call. KEYS: schedule, disabled, push due, paused hosts, then per poll:
# lease, state, push, poll history, one host active zset per slot, then the pause key if any.
# ARGV: history length, then per poll: its fields joined by FIELD_SEPARATOR (slot count, push
# argument count, lease token, schedule mode, source id, due time, claim, pause ms, host, pause
# end), the state JSON ('' keeps the stored one), the poll record ('' for none), one token per
# slot, then the push transition's arguments.
_END_POLLS = (
    TRANSITION_FUNCTION
    + SPLIT_FUNCTION
    + """
local k, a = 5, 2
while a <= #ARGV do
  local f = split(ARGV[a])
  local slots, pushes = tonumber(f[1]), tonumber(f[2])
  local mode, sid, pause = f[4], f[5], tonumber(f[8])
  local state, record = ARGV[a + 1], ARGV[a + 2]
  for i = 1, slots do redis.call('ZREM', KEYS[k + 3 + i], ARGV[a + 2 + i]) end
  if state ~= '' then redis.call('SET', KEYS[k + 1], state) end
  if mode == 'set' then
    redis.call('ZADD', KEYS[1], f[6], sid)
  elseif mode == 'claim' then
    if redis.call('ZSCORE', KEYS[1], sid) == f[7] then redis.call('ZADD', KEYS[1], f[6], sid) end
  elseif mode == 'disable' then
    redis.call('SADD', KEYS[2], sid)
    redis.call('ZREM', KEYS[1], sid)
  elseif mode == 'enable' then
    redis.call('SREM', KEYS[2], sid)
    redis.call('ZADD', KEYS[1], f[6], sid)
  end
  if record ~= '' and redis.call('LPUSH', KEYS[k + 3], record) > tonumber(ARGV[1]) then
    redis.call('LTRIM', KEYS[k + 3], 0, tonumber(ARGV[1]) - 1)
  end
  local used = 4 + slots
  if pause > 0 then
    local key = KEYS[k + used]
    used = used + 1
    if redis.call('PTTL', key) < pause then
      redis.call('SET', key, '1', 'PX', pause)
      redis.call('ZADD', KEYS[4], f[10], f[9])
    end
  end
  if pushes > 0 then push_transition(KEYS[k + 2], KEYS[3], sid, ARGV, a + 3 + slots) end
  if redis.call('GET', KEYS[k]) == f[3] then redis.call('DEL', KEYS[k]) end
  k = k + used
  a = a + 3 + slots + pushes
end
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


# Not frozen, as the other per-poll classes here: built for every poll, and a frozen
# dataclass's __init__ costs about three times a plain one's.
@dataclass(slots=True)
class PollStart:
    """What the first call of a poll found: the stored state and the host's first verdict."""

    state: SourceState
    verdict: Verdict
    wait_seconds: float
    slot_token: str
    """The token of the slot taken when ``verdict`` is GRANTED."""
    claim: str | None = None
    """The dispatcher's claim, renewed for the poll's lease: the token its end reschedules with."""


@dataclass(slots=True)
class PollBegin:
    """One poll to begin: take the source's lease, read its state, take a slot on ``host``.

    With a ``claim``, only while that claim holds and has not lapsed: a job that starts after its
    claim's lease ran out would poll a source the dispatcher has already handed to another job.
    The claim is then renewed for the poll's lease (:attr:`renewed`, :attr:`PollStart.claim`), so
    the dispatcher cannot hand the source on while it is being polled; if the worker dies, the
    renewed claim lapses like any other.
    """

    source_id: str
    lease_token: str
    lease_ms: int
    host: str
    limits: HostLimits
    now: datetime
    claim: str | None = None
    push: bool = True
    """Read the source's hub subscription (:attr:`PollStart.state`'s ``push``); a poll that may
    not subscribe (push off, a page source) has no use for it, and it then reads as None."""

    @property
    def renewed(self) -> str | None:
        """The claim's token once renewed for the lease (None without a claim)."""
        return str(int(self.now.timestamp() + self.lease_ms / 1000)) if self.claim is not None else None


@dataclass(slots=True)
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


@dataclass(frozen=True, slots=True)
class HostPause:
    host: str
    seconds: float
    since: datetime


@dataclass(slots=True)
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


def claim_token(score: float) -> str:
    """Redis returns zset scores as shortest round-trip strings; match that form exactly."""
    return repr(float(score)) if score != int(score) else str(int(score))


class _PollKeys(NamedTuple):
    lease: str
    state: str
    push: str
    history: str


@functools.lru_cache(maxsize=1 << 16)
def _poll_keys(source_id: str) -> _PollKeys:
    """The keys every poll of a source names, formatted once per source, not twice per poll."""
    return _PollKeys(
        keys.poll_lease(source_id),
        keys.source_state(source_id),
        keys.source_push(source_id),
        keys.poll_history(source_id),
    )


@functools.lru_cache(maxsize=16)
def _limit_fields(limits: HostLimits) -> str:
    """A host budget's three arguments to :data:`_BEGIN_POLLS`, joined: the same for every poll."""
    return FIELD_SEPARATOR.join(map(str, limits.args()))


_VERDICTS = tuple(Verdict)  # by value, 0 up: indexed, not called (an enum call is a Python function)


def _start(
    begin: PollBegin, reply: list[Any], slot_token: str, renewed: str | None, written: WrittenStates
) -> PollStart | Refusal:
    outcome = int(reply[0])
    if outcome == 0:
        return Refusal.LEASED
    if outcome == 2:
        return Refusal.CLAIM_LAPSED
    state = written.read(begin.source_id, reply[1])
    if reply[4]:  # (a subscription is None by default: no copy for most polls)
        state = state.model_copy(update={"push": read_push(begin.source_id, reply[4])})
    return PollStart(state, _VERDICTS[int(reply[2])], max(int(reply[3]), 0) / 1000, slot_token, renewed)


def _end_args(end: PollEnd, script_keys: list[str], args: list[object], written: WrittenStates) -> None:
    """One poll's share of :data:`_END_POLLS`'s keys and arguments, appended (its state noted
    in ``written``: should the call fail, what Redis holds is not what was noted)."""
    mode, at, claim = "none", 0.0, ""
    schedule = end.schedule  # (isinstance, not match: class patterns cost the 304 poll a microsecond)
    if isinstance(schedule, Reschedule):
        at = schedule.at.timestamp()
        mode, claim = ("set", "") if schedule.claim is None else ("claim", schedule.claim)
    elif isinstance(schedule, Disable):
        mode = "disable"
    elif isinstance(schedule, Enable):
        mode, at = "enable", schedule.at.timestamp()
    pause = end.pause if end.pause is not None and end.pause.seconds > 0 else None
    pause_ms = math.ceil(pause.seconds * 1000) if pause is not None else 0
    script_keys += _poll_keys(end.source_id)
    script_keys += [keys.host_budget(slot.host)[0] for slot in end.slots]
    pause_host, pause_end = "", "0"
    if pause is not None:
        script_keys.append(keys.host_budget(pause.host)[2])
        pause_host, pause_end = pause.host, repr(pause.since.timestamp() + pause.seconds)
    push = end.push.args() if end.push is not None else []
    stored = ""
    if end.state is not None:
        stored = state_json(end.state)
        written.wrote(end.source_id, stored, end.state)
    fields = (
        str(len(end.slots)),
        str(len(push)),
        end.lease_token,
        mode,
        end.source_id,
        repr(at),
        claim,
        str(pause_ms),
        pause_host,
        pause_end,
    )
    args += [
        FIELD_SEPARATOR.join(fields),
        stored,
        end.record.model_dump_json(exclude_defaults=True) if end.record is not None else "",
        *(slot.token for slot in end.slots),
        *push,
    ]


class SourceStates:
    def __init__(self, redis: Redis, batcher: ScriptBatcher | None = None):
        self.redis = redis
        self.batcher = batcher or ScriptBatcher(redis)
        self._ends: Coalescer[PollEnd] = Coalescer(self.end_polls)
        self._written = WrittenStates()
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

    async def begin_polls(self, begins: Sequence[PollBegin]) -> list[PollStart | Refusal]:
        """Begin many polls in one Lua call (each as :class:`PollBegin` says), in order.

        Concurrent calls still share one pipeline per loop turn (:class:`ScriptBatcher`).
        """
        if not begins:
            return []
        script_keys = [keys.SCHEDULE]
        args: list[object] = []
        slot_tokens = []
        renewals: list[str | None] = []
        for begin in begins:
            slot_token = new_token()
            slot_tokens.append(slot_token)
            renewed = begin.renewed
            renewals.append(renewed)
            poll_keys = _poll_keys(begin.source_id)
            script_keys += [poll_keys.lease, poll_keys.state, *keys.host_budget(begin.host), poll_keys.push]
            fields = (
                begin.lease_token,
                str(begin.lease_ms),
                slot_token,
                _limit_fields(begin.limits),
                begin.claim or "",
                begin.source_id,
                repr(begin.now.timestamp()),
                renewed or "",
                "1" if begin.push else "",
            )
            args.append(FIELD_SEPARATOR.join(fields))
        replies = await self.batcher.run(_BEGIN_POLLS, script_keys, args)
        written = self._written
        return [_start(b, r, t, c, written) for b, r, t, c in zip(begins, replies, slot_tokens, renewals, strict=True)]

    async def end_poll(self, end: PollEnd) -> None:
        """Free the slots, save the state, move the source in the schedule, pause the host, let
        go of the lease: atomic, so no other worker sees a half-finished poll. The ends handed
        in during one event-loop turn (a batch's polls answered together) go out as one call."""
        await asyncio.shield(self._ends.submit(end))  # shared with the other ends of the call: not ours to cancel

    def end_poll_soon(self, end: PollEnd) -> asyncio.Future[None]:
        """:meth:`end_poll` without waiting for it: the future is done once the end is written.
        A batch of polls waits for all its ends at once, each poll's task done meanwhile.

        The ends written by one call share its future: wait on it through ``asyncio.shield``."""
        return self._ends.submit(end)

    async def end_polls(self, ends: Sequence[PollEnd]) -> None:
        """:meth:`end_poll` for many polls, in one Lua call."""
        if not ends:
            return
        script_keys = [keys.SCHEDULE, keys.DISABLED, keys.PUSH_DUE, keys.PAUSED_HOSTS]
        args: list[object] = [POLL_HISTORY]
        for end in ends:
            _end_args(end, script_keys, args, self._written)
        await self.batcher.run(_END_POLLS, script_keys, args)

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
