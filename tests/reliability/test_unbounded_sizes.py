"""Fault: unbounded sizes. A 10 MB title and a 50,000-item feed, each through the real poll (a
local feed server, the pipeline, the ingest stream, the store) and the real web app: the caps
hold, nothing readable is lost, and the work's peak memory stays within a generous bound."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from service.config import settings_from_dict
from service.models import ArticleFlag
from service.web.app import create_app
from tests.feedserver import FeedServer
from tests.pollkit import TEST_FETCH, resources
from tests.reliability.memory import MIB, peak_growth
from workers.ingest import drain as ingest
from workers.poll.pipeline import PollStatus, poll_source

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def settings(url: str, **storage: int):  # type: ignore[no-untyped-def]
    return settings_from_dict(
        {
            "fetch": TEST_FETCH,
            "storage": {"retention_per_source": 500, **storage},
            "sources": [{"id": "big", "url": url, "interval_seconds": 600, "adaptive": False}],
            "feeds": [{"name": "all", "title": "All", "sources": ["big"], "limit": 100}],
        }
    )


def rss(items: str) -> bytes:
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>{items}</channel></rss>".encode()


def item(n: int, title: str | None = None, when: datetime | None = None) -> str:
    stamp = (when or T0 - timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    title = title or f"Item {n}"
    return f"<item><guid isPermaLink='false'>g{n}</guid><title>{title}</title><pubDate>{stamp}</pubDate></item>"


async def test_a_ten_megabyte_title(redis, clock, feed_server: FeedServer, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    title = "word " * (2 * 1024 * 1024)  # 10 MiB
    url = feed_server.set("/big.rss", rss(item(1, title) + item(2)), content_type="application/rss+xml")
    config = settings(url)
    res = resources(config, redis, clock)
    try:
        with peak_growth() as peak:
            report = await poll_source(res, config.sources[0])
            await ingest.drain(redis, res.store, clock, "c")
    finally:
        await res.session.close()
    assert report.status is PollStatus.FETCHED and report.new == 2  # nothing lost: both items stored
    articles = await res.store.feed_articles("all", 10)
    capped = next(a for a in articles if a.guid == "g1")
    assert len(capped.title) <= config.limits.title_chars and capped.title.endswith("…")
    assert ArticleFlag.TRUNCATED in capped.flags and capped.truncated == ("title",)
    client = await aiohttp_client(create_app(config, redis=redis))
    for fmt in ("rss", "atom", "json"):
        body = await (await client.get(f"/feeds/all.{fmt}")).read()
        assert len(body) < 64 * 1024, fmt  # every merged feed carrying it was 10.7 MB
    assert peak.grew < 192 * MIB, f"{peak.how} grew {peak.grew // MIB} MiB"  # measured about 70 MiB


async def test_a_fifty_thousand_item_feed(redis, clock, feed_server: FeedServer, caplog) -> None:  # type: ignore[no-untyped-def]
    # Oldest first in the document, the way some archives list: the newest are still the ones kept.
    body = rss("".join(item(n, when=T0 + timedelta(minutes=n)) for n in range(50_000)))
    url = feed_server.set("/huge.rss", body, content_type="application/rss+xml")
    config = settings(url)
    res = resources(config, redis, clock)
    try:
        with peak_growth() as peak, caplog.at_level(logging.WARNING, logger="workers.poll.pipeline"):
            report = await poll_source(res, config.sources[0])
            await ingest.drain(redis, res.store, clock, "c")
    finally:
        await res.session.close()
    assert report.status is PollStatus.FETCHED
    assert report.new == 500  # the newest retention_per_source, not 50,000 written then 49,500 deleted
    assert await res.store.article_count("big") == 500
    kept = {a.guid for a in await res.store.source_articles("big", 500)}
    assert kept == {f"g{n}" for n in range(49_500, 50_000)}
    assert any("49500 older entries skipped" in r.getMessage() for r in caplog.records)
    # Measured about 90 MiB; reading and normalising all 50,000 alone took about 200 MiB.
    assert peak.grew < 192 * MIB, f"{peak.how} grew {peak.grew // MIB} MiB"
