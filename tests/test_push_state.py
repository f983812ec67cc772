"""The subscription's Redis side, part of the source state: conditional changes, counters that
survive a poll ending in between, leaving, forgetting, and the due index."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from service import keys
from service.config import PushConfig
from service.models import PushStatus, SourceState
from service.push import lifecycle
from service.push.discovery import HubLink
from service.push.subscriber_protocol import Ping
from service.store.host_slots import HostLimits
from service.store.push_inbox import MAX_QUEUED, TTL_SECONDS, Delivery, PushInbox
from service.store.push_state import PushTransition
from service.store.source_state import PollEnd, PollStart, Reschedule, SourceStates
from tests.conftest import ManualClock
from tests.pollkit import begin_one

CONFIG = PushConfig()
LINK = HubLink("https://hub.example/", "https://pub.example/feed")
LIMITS = HostLimits(concurrency=2, per_minute=600, slot_ms=60_000)


async def active(sources: SourceStates, clock: ManualClock, source_id: str = "s") -> str:
    """A verified subscription for ``source_id``; returns its callback id."""
    assert await sources.push.apply(source_id, lifecycle.discovered(None, LINK, clock(), CONFIG))
    discovered = await sources.push.get(source_id)
    assert discovered is not None
    change = lifecycle.requested(discovered, clock(), CONFIG, callback_id="c" * 32, secret="s" * 43)
    assert await sources.push.apply(source_id, change, link="c" * 32)
    pending = await sources.push.get(source_id)
    assert pending is not None
    assert await sources.push.apply(source_id, lifecycle.verified(pending, 3600, clock(), CONFIG))
    return "c" * 32


async def test_a_delivery_during_a_poll_is_not_lost_when_the_poll_ends(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    callback = await active(sources, clock)
    start = await begin_one(sources, "s", "lease", "pub.example", LIMITS, clock())
    assert isinstance(start, PollStart) and start.state.push is not None
    assert start.state.push.status is PushStatus.ACTIVE and start.state.push.secret == "s" * 43
    # The web side records a delivery while the poll holds the state ...
    assert await sources.push.apply("s", lifecycle.delivered(start.state.push, Ping.FAT, clock()))
    # ... and the poll ends with its whole state and a miss of its own.
    state = start.state.model_copy(update={"last_poll": clock()})
    miss = lifecycle.missed(start.state.push, "why", clock(), CONFIG)
    await sources.end_poll(PollEnd("s", "lease", state=state, schedule=Reschedule(clock()), push=miss))
    push = await sources.push.get("s")
    assert push is not None and (push.deliveries, push.misses, push.status) == (1, 1, PushStatus.FALLBACK)
    assert "push" not in (await redis.get(keys.source_state("s"))).decode()
    stored = await sources.get("s")
    assert stored.last_poll == clock() and stored.push == push  # read back with the state
    assert await redis.zscore(keys.PUSH_DUE, "s") == (clock() + timedelta(seconds=CONFIG.fallback_seconds)).timestamp()
    assert await sources.push.by_callback(callback) == ("s", push)


async def test_changes_apply_only_in_the_state_they_expect(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await active(sources, clock)
    other = PushTransition({"error": "x"}, when_id="d" * 32)
    assert not await sources.push.apply("s", other)
    wrong_status = PushTransition({"error": "x"}, when_status=frozenset({PushStatus.PENDING}))
    assert not await sources.push.apply("s", wrong_status)
    assert not await sources.push.apply(
        "nobody", PushTransition({"error": "x"}, when_status=frozenset({PushStatus.ACTIVE}))
    )
    push = await sources.push.get("s")
    assert push is not None and push.error is None
    assert await sources.push.apply("s", PushTransition({"error": "y"}, {"failures": 2}, when_id="c" * 32))
    push = await sources.push.get("s")
    assert push is not None and (push.error, push.failures) == ("y", 2)
    # A new hub: the old attempt's fields go, the counters stay.
    assert await sources.push.apply(
        "s", lifecycle.discovered(push, HubLink("https://h2/", LINK.topic), clock(), CONFIG)
    )
    moved = await sources.push.get("s")
    assert moved is not None and moved.id is None and moved.secret is None and moved.failures == 0
    assert moved.hub == "https://h2/" and moved.lease_end is None
    assert await sources.push.by_callback("c" * 32) is None  # the old callback is no attempt any more


async def test_leave_unsubscribes_what_the_hub_holds_and_forgets_the_rest(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await active(sources, clock, "live")
    await sources.push.apply("found", lifecycle.discovered(None, LINK, clock(), CONFIG))
    assert await sources.push.leave("live", clock())
    live = await sources.push.get("live")
    assert live is not None and live.status is PushStatus.UNSUBSCRIBING and live.requested_at is None
    assert await sources.push.leave("found", clock())
    assert await sources.push.get("found") is None and not await sources.push.leave("found", clock())
    assert await sources.push.subscribed_sources() == {"live"}
    assert not await sources.push.forget("live", "d" * 32)  # not its attempt
    assert await sources.push.forget("live", "c" * 32)
    assert await sources.push.get("live") is None and await redis.get(keys.push_callback("c" * 32)) is None


async def test_sources_leaving_the_config_are_unsubscribed_by_the_schedule_sync(
    redis: Redis, clock: ManualClock
) -> None:
    sources = SourceStates(redis)
    await active(sources, clock, "kept")
    await active(sources, clock, "removed")
    await sources.sync_schedule(["kept"], clock())
    assert (await sources.get("kept")).push.status is PushStatus.ACTIVE  # type: ignore[union-attr]
    assert (await sources.get("removed")).push.status is PushStatus.UNSUBSCRIBING  # type: ignore[union-attr]


async def test_due_subscriptions_are_claimed_once(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await sources.push.apply("a", lifecycle.discovered(None, LINK, clock(), CONFIG))
    await sources.push.apply("b", lifecycle.discovered(None, LINK, clock() + timedelta(seconds=10), CONFIG))
    assert await sources.push.claim_due(clock(), 300) == ["a"]
    assert await sources.push.claim_due(clock(), 300) == []  # leased to the first claimer
    assert sorted(await sources.push.claim_due(clock() + timedelta(seconds=300), 300)) == ["a", "b"]


async def test_unreadable_subscription_is_none_and_thin_pings_only_move_scheduled_sources(
    redis: Redis, clock: ManualClock
) -> None:
    sources = SourceStates(redis)
    await redis.hset(keys.source_push("s"), mapping={"status": "bogus", "hub": "h"})
    assert await sources.push.get("s") is None and (await sources.get("s")).push is None
    await redis.zadd(keys.SCHEDULE, {"s": (clock() + timedelta(seconds=600)).timestamp()})
    assert await sources.poll_soon("s", clock())
    assert not await sources.poll_soon("s", clock() + timedelta(seconds=5))  # never later
    assert not await sources.poll_soon("off-schedule", clock())
    assert await redis.zscore(keys.SCHEDULE, "off-schedule") is None


async def test_an_operator_steering_a_source_keeps_its_subscription(redis: Redis, clock: ManualClock) -> None:
    sources = SourceStates(redis)
    await active(sources, clock)
    await sources.disable("s", "operator", clock())
    await sources.enable("s", clock())
    state = await sources.get("s")
    assert state.push is not None and state.push.status is PushStatus.ACTIVE
    assert SourceState.model_validate_json(await redis.get(keys.source_state("s"))).push is None


async def test_inbox_is_bounded_and_taken_whole(redis: Redis) -> None:
    inbox = PushInbox(redis)
    for n in range(MAX_QUEUED + 5):
        await inbox.put("s", Delivery("application/atom+xml; charset=utf-8", f"<feed>{n}</feed>".encode()))
    assert 0 < await redis.ttl(keys.push_inbox("s")) <= TTL_SECONDS
    taken = await inbox.take("s")
    assert len(taken) == MAX_QUEUED and taken[0].body == b"<feed>5</feed>"
    assert taken[-1] == Delivery("application/atom+xml; charset=utf-8", f"<feed>{MAX_QUEUED + 4}</feed>".encode())
    assert await inbox.take("s") == []
