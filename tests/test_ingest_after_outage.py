"""After Redis was away mid-drain, a worker stores what it had read and not acknowledged at once,
instead of leaving it for another worker's reclaim a minute later."""

from __future__ import annotations

from service import keys
from service.models import UpsertOutcome
from service.store.articles import Store
from tests.test_ingest import SETTINGS, article
from workers.ingest import drain as ingest


async def test_own_unacknowledged_reads_are_stored_first(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await ingest.ensure_group(redis)
    await ingest.publish(redis, "s", [article(1), article(2)])
    # This worker read the entry; Redis went away before the acknowledgement.
    await redis.xreadgroup(keys.INGEST_GROUP, "me", {keys.INGEST_STREAM: ">"}, count=10)
    assert (await ingest.drain(redis, store, clock, "me")).entries == 0  # a plain drain does not see it yet
    await ingest.publish(redis, "s", [article(3)])
    report = await ingest.drain(redis, store, clock, "me", own_pending=True)
    assert report.entries == 2 and report.outcomes == {UpsertOutcome.NEW: 3}
    assert await redis.xlen(keys.INGEST_STREAM) == 0
    assert await redis.xpending(keys.INGEST_STREAM, keys.INGEST_GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": []
    }  # fmt: skip


async def test_another_consumers_reads_are_left_to_the_reclaim(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await ingest.ensure_group(redis)
    await ingest.publish(redis, "s", [article(1)])
    await redis.xreadgroup(keys.INGEST_GROUP, "other", {keys.INGEST_STREAM: ">"}, count=10)
    assert (await ingest.drain(redis, store, clock, "me", own_pending=True)).entries == 0
