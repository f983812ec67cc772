"""Claiming due sources: once per due time across any number of claimers; a dead claim expires."""

import asyncio

from service import keys
from workers.poll import dispatch


async def test_concurrent_claimers_split_due_sources_without_overlap(redis, clock) -> None:  # type: ignore[no-untyped-def]
    ids = [f"s{n}" for n in range(200)]
    await dispatch.sync_schedule(redis, ids, clock())
    clock.advance(1)
    claims = await asyncio.gather(*(dispatch.claim_due(redis, clock(), 120, limit=30) for _ in range(10)))
    claimed = [sid for batch in claims for sid, _ in batch]
    assert len(claimed) == len(set(claimed)) == 200  # 10 x 30 >= 200: all claimed, none twice
    assert await dispatch.claim_due(redis, clock(), 120) == []


async def test_expired_lease_is_claimed_again_and_old_token_loses(redis, clock) -> None:  # type: ignore[no-untyped-def]
    await dispatch.sync_schedule(redis, ["a"], clock())
    [(sid, token)] = await dispatch.claim_due(redis, clock(), 120)
    assert await dispatch.holds_claim(redis, "a", token)
    assert await dispatch.claim_due(redis, clock.advance(60), 120) == []
    [(_, token2)] = await dispatch.claim_due(redis, clock.advance(61), 120)
    assert token2 != token
    assert not await dispatch.holds_claim(redis, "a", token)
    assert not await dispatch.reschedule(redis, "a", clock.advance(600), token)
    assert await dispatch.reschedule(redis, "a", clock(), token2)


async def test_sync_schedule_adds_new_keeps_known_drops_removed(redis, clock) -> None:  # type: ignore[no-untyped-def]
    await dispatch.sync_schedule(redis, ["a", "b"], clock())
    await redis.zadd(keys.SCHEDULE, {"a": 5})
    await dispatch.sync_schedule(redis, ["a", "c"], clock())
    scheduled = dict(await redis.zrange(keys.SCHEDULE, 0, -1, withscores=True))
    assert scheduled == {b"a": 5.0, b"c": clock().timestamp()}
