"""The one owner of source state: reading one or many, an operator's enable/disable, the begin and
end of a poll, and claiming due sources once per due time across any number of claimers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from redis.asyncio import Redis

from service import keys
from service.models import PollRecord, PushStatus, PushSubscription, SourceState
from service.store.host_slots import HostLimits, Slot, Verdict
from service.store.source_state import (
    POLL_HISTORY,
    Disable,
    Enable,
    HostPause,
    PollEnd,
    PollStart,
    Refusal,
    Reschedule,
    SourceStates,
)
from service.store.stored_state import WrittenStates, state_json
from tests.conftest import ManualClock
from tests.pollkit import begin_one

LIMITS = HostLimits(concurrency=2, per_minute=600, slot_ms=60_000)


async def test_get_and_get_many_read_fresh_stored_and_unreadable_states(redis: Redis) -> None:
    sources = SourceStates(redis)
    await redis.set(keys.source_state("a"), SourceState(etag='"a"').model_dump_json())
    await redis.set(keys.source_state("bad"), b"{not json")
    assert (await sources.get("a")).etag == '"a"'
    assert await sources.get("missing") == SourceState()
    assert await sources.get("bad") == SourceState()  # logged, started afresh
    many = await sources.get_many(["missing", "a", "bad"])
    assert list(many) == ["missing", "a", "bad"] and many["a"].etag == '"a"' and many["bad"] == SourceState()
    assert await sources.get_many([]) == {}


async def test_disable_then_enable(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await sources.sync_schedule(["s"], clock())
    await redis.set(keys.source_state("s"), SourceState(etag='"e"', consecutive_failures=4).model_dump_json())
    await sources.disable("s", "spam", clock())
    state = await sources.get("s")
    assert (state.disabled, state.disabled_reason, state.disabled_at, state.etag) == (True, "spam", clock(), '"e"')
    assert await sources.is_disabled("s") and await redis.zscore(keys.SCHEDULE, "s") is None
    await sources.sync_schedule(["s"], clock())  # a worker restart keeps it off
    assert await redis.zscore(keys.SCHEDULE, "s") is None

    assert await sources.enable("s", clock.advance(60)) == "spam"
    state = await sources.get("s")
    assert not state.disabled and state.consecutive_failures == 0 and state.etag == '"e"'
    assert (state.next_poll, state.next_poll_reason) == (clock(), "enabled")
    assert not await sources.is_disabled("s") and await redis.zscore(keys.SCHEDULE, "s") == clock().timestamp()
    assert await sources.enable("s", clock()) is None  # was not disabled


async def test_a_poll_begins_and_ends_in_one_call_each(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await sources.sync_schedule(["s"], clock())
    [(_, claim)] = await sources.claim_due(clock(), 120)
    start = await begin_one(sources, "s", "lease-1", "h.example", LIMITS, clock())
    assert isinstance(start, PollStart) and start.state == SourceState() and start.verdict is Verdict.GRANTED
    assert await begin_one(sources, "s", "lease-2", "h.example", LIMITS, clock()) is Refusal.LEASED
    assert await redis.zcard(keys.host_budget("h.example")[0]) == 1

    at = clock() + timedelta(seconds=600)
    end = PollEnd("s", "lease-1", slots=[Slot("h.example", start.slot_token)])
    end.state, end.schedule, end.pause = (
        SourceState(etag='"x"'),
        Reschedule(at, claim),
        HostPause("h.example", 30, clock()),
    )
    end.record = PollRecord(at=clock(), outcome="rate_limited", status=429, duration_ms=12, bytes=0)
    await sources.end_poll(end)
    assert (await sources.get("s")).etag == '"x"'
    assert await sources.history("s") == [end.record]  # the poll's record, in the same call
    assert await sources.paused_hosts(clock()) == 1 and await sources.paused_hosts(clock() + timedelta(seconds=31)) == 0
    assert await redis.zscore(keys.SCHEDULE, "s") == at.timestamp()
    assert await redis.zcard(keys.host_budget("h.example")[0]) == 0  # slot freed
    assert 29_000 < await redis.pttl(keys.host_budget("h.example")[2]) <= 30_000  # host paused
    assert await redis.get(keys.poll_lease("s")) is None  # lease released

    again = await begin_one(sources, "s", "lease-3", "h.example", LIMITS, clock())
    assert isinstance(again, PollStart) and again.state.etag == '"x"' and again.verdict is Verdict.PAUSED


async def test_a_claimed_poll_begins_only_while_its_claim_holds_and_has_not_lapsed(
    redis: Redis, clock: ManualClock
) -> None:
    sources = SourceStates(redis)
    await sources.sync_schedule(["s"], clock())
    [(_, claim)] = await sources.claim_due(clock(), 120)

    async def begin(at_seconds: float, token: str = claim) -> PollStart | Refusal:
        now = clock() + timedelta(seconds=at_seconds)
        start = await begin_one(sources, "s", "l", "h", LIMITS, now, claim=token)
        await redis.delete(keys.poll_lease("s"))
        return start

    assert await begin(120) is Refusal.CLAIM_LAPSED  # its lease ran out: the dispatcher may hand it on
    assert await begin(0, "12345") is Refusal.CLAIM_LAPSED  # not the claim the schedule holds
    start = await begin(119)
    assert isinstance(start, PollStart)  # renewed for the poll's lease: not due while it is polled
    assert start.claim == str(int(clock().timestamp()) + 119 + 60)
    assert await sources.holds_claim("s", start.claim) and not await sources.holds_claim("s", claim)
    assert await sources.claim_due(clock() + timedelta(seconds=150), 120) == []
    assert await begin(0) is Refusal.CLAIM_LAPSED  # the old claim was superseded by the renewal


async def test_poll_end_schedule_changes(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await sources.sync_schedule(["s"], clock())
    [(_, stale)] = await sources.claim_due(clock(), 120)
    await sources.reschedule("s", clock())  # someone else moved it: the stale claim no longer holds
    await sources.end_poll(PollEnd("s", "t", schedule=Reschedule(clock() + timedelta(hours=1), stale)))
    assert await redis.zscore(keys.SCHEDULE, "s") == clock().timestamp()
    await sources.end_poll(PollEnd("s", "t", schedule=Disable()))
    assert await sources.is_disabled("s") and await redis.zscore(keys.SCHEDULE, "s") is None
    await sources.end_poll(PollEnd("s", "t", schedule=Enable(clock())))
    assert not await sources.is_disabled("s") and await redis.zscore(keys.SCHEDULE, "s") == clock().timestamp()
    await sources.end_poll(PollEnd("s", "t"))  # nothing to change: the state stays unwritten
    assert await redis.get(keys.source_state("s")) is None


async def test_concurrent_claimers_split_due_sources_without_overlap(redis: Redis, clock: ManualClock) -> None:
    ids = [f"s{n}" for n in range(200)]
    await SourceStates(redis).sync_schedule(ids, clock())
    clock.advance(1)
    claims = await asyncio.gather(*(SourceStates(redis).claim_due(clock(), 120, limit=30) for _ in range(10)))
    claimed = [sid for batch in claims for sid, _ in batch]
    assert len(claimed) == len(set(claimed)) == 200  # 10 x 30 >= 200: all claimed, none twice
    assert await SourceStates(redis).claim_due(clock(), 120) == []


async def test_expired_lease_is_claimed_again_and_old_token_loses(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await sources.sync_schedule(["a"], clock())
    [(_, token)] = await sources.claim_due(clock(), 120)
    assert await sources.holds_claim("a", token)
    assert await sources.claim_due(clock.advance(60), 120) == []
    [(_, token2)] = await sources.claim_due(clock.advance(61), 120)
    assert token2 != token
    assert not await sources.holds_claim("a", token)
    assert not await sources.reschedule("a", clock.advance(600), token)
    assert await sources.reschedule("a", clock(), token2)


async def test_sync_schedule_adds_new_keeps_known_drops_removed(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await sources.sync_schedule(["a", "b"], clock())
    await redis.zadd(keys.SCHEDULE, {"a": 5})
    await sources.sync_schedule(["a", "c"], clock())
    scheduled = dict(await redis.zrange(keys.SCHEDULE, 0, -1, withscores=True))
    assert scheduled == {b"a": 5.0, b"c": clock().timestamp()}


async def test_the_history_keeps_the_newest_polls(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    for n in range(POLL_HISTORY + 5):
        end = PollEnd("s", "t", record=PollRecord(at=clock(), outcome="not_modified", status=304, new=n))
        await sources.end_poll(end)
    history = await sources.history("s")
    assert len(history) == POLL_HISTORY and history[0].new == POLL_HISTORY + 4  # newest first, capped


async def test_ends_written_together_survive_one_waiter_being_cancelled(redis: Redis, clock: ManualClock) -> None:
    """The ends handed in during one turn share one call and one future: a poll cancelled while
    waiting (its job timed out) must not cancel the others' writes nor their waits."""
    sources = SourceStates(redis)
    state = SourceState(etag='"e"', last_poll=clock())
    waits = [asyncio.ensure_future(sources.end_poll(PollEnd(sid, "t", state=state))) for sid in ("a", "b", "c")]
    soon = sources.end_poll_soon(PollEnd("d", "t", state=state))
    await asyncio.sleep(0)  # the waits are in, the call not yet answered
    waits[0].cancel()
    await asyncio.gather(*waits[1:], asyncio.shield(soon))
    assert [s.etag for s in (await sources.get_many(["a", "b", "c", "d"])).values()] == ['"e"'] * 4


async def test_a_poll_reads_back_the_state_it_wrote_and_anything_written_since(
    redis: Redis, clock: ManualClock
) -> None:
    """The state a process wrote is taken back as written while Redis holds its very bytes; a
    change since (an operator, another worker, a subscription) is read from Redis as ever."""
    sources = SourceStates(redis)
    written = SourceState(etag='"x"', last_poll=clock())
    await sources.end_poll(PollEnd("s", "l1", state=written))
    start = await begin_one(sources, "s", "l2", "h", LIMITS, clock())
    assert isinstance(start, PollStart) and start.state is written  # not validated again
    await redis.delete(keys.poll_lease("s"))

    await SourceStates(redis).pause("s")  # another process (the CLI) changes the stored state
    start = await begin_one(sources, "s", "l3", "h", LIMITS, clock())
    assert isinstance(start, PollStart) and start.state is not written
    assert start.state.paused and start.state.etag == '"x"'
    await redis.delete(keys.poll_lease("s"))

    await sources.end_poll(PollEnd("s", "l3", state=written))
    await redis.hset(
        keys.source_push("s"),
        mapping={"status": "active", "hub": "https://hub.example/", "topic": "https://f.example/"},
    )
    start = await begin_one(sources, "s", "l4", "h", LIMITS, clock())  # begin_one reads the push hash
    assert isinstance(start, PollStart) and start.state.push is not None and start.state.etag == '"x"'
    assert written.push is None  # the state written is copied, never changed in place


def test_the_states_written_are_bounded_and_never_kept_with_a_subscription() -> None:
    written = WrittenStates(size=2)
    states = {name: SourceState(etag=f'"{name}"') for name in "abc"}
    for name, state in states.items():
        written.wrote(name, state_json(state), state)
    assert written.read("a", state_json(states["a"]).encode()) is not states["a"]  # the oldest went
    assert written.read("c", state_json(states["c"]).encode()) is states["c"]
    assert written.read("c", None) == SourceState()  # deleted since: a fresh state
    subscribed = SourceState(
        etag='"d"',
        push=PushSubscription(status=PushStatus.ACTIVE, hub="https://hub.example/", topic="https://f.example/"),
    )
    written.wrote("c", state_json(subscribed), subscribed)  # stored without its subscription
    read = written.read("c", state_json(subscribed).encode())
    assert read is not subscribed and read.push is None and read.etag == '"d"'
