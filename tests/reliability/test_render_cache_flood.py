"""Fault: the render cache counted entries, not bytes. 80 requests with distinct ``?limit=`` took
a web process from 196 MB to 1.56 GB. Now the cache stays within ``[server] render_cache_bytes``
(plus the pinned plain feed), and the process's memory with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.config import settings_from_dict
from service.models import Article
from service.store.articles import Store
from service.web.app import create_app
from service.web.appkeys import FEED_CACHE
from tests.reliability.memory import MIB, peak_growth

T0 = datetime(2026, 11, 1, tzinfo=UTC)
BUDGET = 8 * MIB


async def test_eighty_distinct_limits(redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    config = settings_from_dict(
        {
            "server": {"render_cache_bytes": BUDGET},
            "sources": [{"id": "s", "url": "https://s.example/feed"}],
            "feeds": [{"name": "all", "title": "All", "sources": ["s"], "limit": 50}],
        }
    )
    store = Store(redis, config)
    body = "<p>" + "Paragraph of an article body. " * 60 + "</p>"  # ~1.8 KB, in two fields of each item
    for n in range(1000):
        when = T0 + timedelta(minutes=n)
        article = Article(
            id=f"{n:032x}",
            source_id="s",
            url=f"https://s.example/{n}",
            title=f"Story {n}",
            summary=body,
            content=body,
            published=when,
            updated=when,
            first_seen=when,
        )
        await store.upsert(article, when)
    client = await aiohttp_client(create_app(config, redis=redis))
    cache = client.app[FEED_CACHE]
    await (await client.get("/feeds/all.atom")).read()
    pinned = cache.cached_bytes
    with peak_growth() as peak:
        for limit in range(921, 1001):  # 80 distinct, each a rendering of ~4 MB and its items
            # The session itself, not client.get: the test client keeps every response (and its
            # body) until it closes, which is the test's memory, not the server's.
            url = client.make_url(f"/feeds/all.atom?limit={limit}")
            async with client.session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
                assert response.status == 200
                await response.read()
            assert cache.cached_bytes <= BUDGET + pinned
    # Each rendering is built (and freed) in turn; what stays is the budget. Measured: about 30 MiB;
    # with the cache bounded by entry count instead, about 840 MiB.
    assert peak.grew < 128 * MIB, f"{peak.how} grew {peak.grew // MIB} MiB"
