"""Fault: bursts hurt readers. A feed's version moved once per article, so an ingest burst of
10,000 articles re-rendered the feed 10,001 times while readers waited. Now it moves once per
drain batch: readers re-render a handful of times however large the burst."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from service.config import settings_from_dict
from service.feeds.cache import FeedCache
from service.models import Article
from service.store.articles import Store
from workers.ingest import drain as ingest

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ARTICLES, PER_POLL = 2000, 20


def article(n: int) -> Article:
    when = T0 + timedelta(seconds=n)
    return Article(id=f"{n:032x}", source_id="s", title=f"t{n}", published=when, updated=when, first_seen=when)


async def test_a_burst_renders_the_feed_once_per_batch(redis, clock) -> None:  # type: ignore[no-untyped-def]
    config = settings_from_dict(
        {
            "storage": {"retention_per_source": ARTICLES},
            "sources": [{"id": "s", "url": "https://s.example/feed"}],
            "feeds": [{"name": "all", "title": "All", "sources": ["s"], "limit": 50}],
        }
    )
    store = Store(redis, config)
    cache = FeedCache(store, config)
    await ingest.ensure_group(redis)
    for start in range(0, ARTICLES, PER_POLL):  # a hundred polls' worth queued at once
        await ingest.publish(redis, "s", [article(n) for n in range(start, start + PER_POLL)])
    before = await store.feed_version("all")
    renders: set[int] = set()
    done = asyncio.Event()

    async def reader() -> None:  # a reader asking all through the burst
        while not done.is_set():
            snapshot = await cache.snapshot(config.feeds[0])
            snapshot.rendered("atom")
            renders.add(id(snapshot))
            await asyncio.sleep(0)

    async def burst() -> None:
        try:
            await ingest.drain(redis, store, clock, "c", max_entries=ARTICLES)
        finally:
            done.set()

    await asyncio.gather(reader(), burst())
    batches = -(-ARTICLES // PER_POLL // ingest.BATCH)
    moved = await store.feed_version("all") - before
    assert await store.feed_count("all") == ARTICLES
    assert 1 <= moved <= batches + 1  # the trim at the end may move it once more; was 2,000
    assert len(renders) <= moved + 1
