"""Two real sources carry the same story (different guids, tracking parameters and titles):
after a real worker polls both, the merged feed holds it once with both sources as provenance;
a re-poll and a tracking-parameter change are neither new items nor revisions."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from service.config import settings_from_dict
from service.store.articles import Store
from service.web.app import create_app
from tests.test_e2e import run_worker

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{name}</title><link>https://{name}.example/</link>
<item><guid isPermaLink="false">{name}-typhoon</guid><title>{title}</title>
<link>https://story.example/typhoon?utm_source={tracking}</link>
<pubDate>Wed, 20 Sep 2023 01:12:00 HKT</pubDate>
<description>&lt;p onclick="steal()"&gt;Signal 8&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</description></item>
<item><guid isPermaLink="false">{name}-own</guid><title>Only in {name}</title>
<link>https://{name}.example/own</link><pubDate>Wed, 20 Sep 2023 00:00:00 HKT</pubDate></item>
</channel></rss>"""


async def test_one_story_two_sources(redis, redis_url, feed_server, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    urls = {
        name: feed_server.set(
            f"/{name}.rss", FEED.format(name=name, title=title, tracking=name), content_type="application/rss+xml"
        )
        for name, title in (("wire", "Typhoon signal 8 raised"), ("blog", "T8 is up!"))
    }
    settings = settings_from_dict(
        {
            "fetch": {"allow_private_networks": True, "jitter_fraction": 0},
            "sources": [
                {"id": name, "name": name.title(), "url": url, "tags": ["hk"], "adaptive": False}
                for name, url in urls.items()
            ],
            "feeds": [{"name": "hk", "title": "HK", "tags": ["hk"]}],
        }
    )
    await run_worker(settings, redis_url, clock)
    store = Store(redis, settings)
    articles = await store.feed_articles("hk", 10)
    assert len(articles) == 3
    (story,) = [a for a in articles if a.url == "https://story.example/typhoon"]
    # Both polls run concurrently: whichever stored it first owns it and is listed first.
    assert story.title == {"wire": "Typhoon signal 8 raised", "blog": "T8 is up!"}[story.source_id]
    assert story.sources[0].id == story.source_id
    assert sorted((s.id, s.name, s.url) for s in story.sources) == [
        ("blog", "Blog", "https://story.example/typhoon?utm_source=blog"),
        ("wire", "Wire", "https://story.example/typhoon?utm_source=wire"),
    ]
    assert story.summary == "<p>Signal 8</p>" and story.summary_text == "Signal 8"

    client: TestClient = await aiohttp_client(create_app(settings, redis=redis, clock=clock))
    response = await client.get("/feeds/hk.json")
    items = json.loads(await response.read())["items"]
    assert len(items) == 3 and sum(i.get("url") == story.url for i in items) == 1

    # Re-poll with a new tracking parameter in both feeds: nothing new, no revision.
    for name in urls:
        feed_server.set(
            f"/{name}.rss",
            FEED.format(name=name, title="x", tracking="other").replace(
                "<title>x</title>", f"<title>{'Typhoon signal 8 raised' if name == 'wire' else 'T8 is up!'}</title>"
            ),
            content_type="application/rss+xml",
        )
    version = await store.feed_version("hk")
    clock.advance(3600)
    await run_worker(settings, redis_url, clock)
    assert [r.status for r in feed_server.seen("/wire.rss")] == [200, 200]  # really re-fetched
    assert await store.feed_version("hk") == version
    assert await store.revisions(story.id) == []
