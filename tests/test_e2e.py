"""The feed reader's journey end to end: three local sources (RSS, Atom, JSON Feed) and a broken
one, a real arq worker on a real Redis, the real app, each merged format read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import feedparser
import pytest
from aiohttp.test_utils import TestClient

from service import keys
from service.config import Settings, settings_from_dict
from service.web.app import create_app
from tests.conftest import DATA, ManualClock
from tests.feedserver import FeedServer
from workers.settings import build_worker

SOURCES = {"rss-src": "news.rss", "atom-src": "news.atom", "json-src": "news.json"}
CONTENT_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}


def e2e_settings(server: FeedServer) -> Settings:
    sources = []
    for source_id, fixture in SOURCES.items():
        ext = fixture.rsplit(".", 1)[1]
        url = server.set(f"/{fixture}", (DATA / "e2e" / fixture).read_bytes(), content_type=CONTENT_TYPES[ext])
        sources.append({"id": source_id, "url": url, "interval_seconds": 60, "tags": ["e2e"], "adaptive": False})
    broken = server.set("/broken.xml", b"\x00\x01 <<< not a feed", content_type="text/xml")
    sources.append({"id": "broken-src", "url": broken, "interval_seconds": 60, "tags": ["e2e"], "adaptive": False})
    return settings_from_dict(
        {
            "server": {"base_url": "http://feeds.test"},
            "fetch": {"allow_private_networks": True, "timeout_seconds": 5, "jitter_fraction": 0},
            "sources": sources,
            "feeds": [{"name": "all", "title": "Everything", "tags": ["e2e"], "limit": 50}],
        }
    )


async def run_worker(settings: Settings, redis_url: str, clock: ManualClock) -> None:
    """One burst of a real arq worker: dispatch what is due, poll it, ingest, exit."""
    worker = build_worker(settings, redis_url, clock=clock, burst=True, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()  # noqa: arq closes its pool with the deprecated close()


@pytest.fixture
async def journey(redis, redis_url, feed_server, clock, aiohttp_client):  # type: ignore[no-untyped-def]
    settings = e2e_settings(feed_server)
    client: TestClient = await aiohttp_client(create_app(settings, redis=redis, clock=clock))
    return settings, client


async def get_feed(client: TestClient, fmt: str, **headers: str):  # type: ignore[no-untyped-def]
    response = await client.get(f"/feeds/all.{fmt}", headers=headers)
    return response, await response.read()


async def test_reader_journey(journey, redis, redis_url, feed_server, clock) -> None:  # type: ignore[no-untyped-def]
    settings, client = journey
    await run_worker(settings, redis_url, clock)

    # Every format carries the 7 articles of the three good sources, newest first.
    rss_response, rss = await get_feed(client, "rss")
    assert rss_response.status == 200
    parsed_rss = feedparser.parse(rss)
    assert not parsed_rss.bozo, parsed_rss.get("bozo_exception")
    assert len(parsed_rss.entries) == 7
    _atom_response, atom = await get_feed(client, "atom")
    parsed_atom = feedparser.parse(atom)
    assert not parsed_atom.bozo and len(parsed_atom.entries) == 7
    _json_response, body = await get_feed(client, "json")
    items = json.loads(body)["items"]
    assert len(items) == 7
    assert [e.id for e in parsed_atom.entries] == [e.id for e in parsed_rss.entries] == [i["id"] for i in items]

    # The seed article's HKT pubDate lands in UTC.
    seed = next(i for i in items if i["title"] == "Azerbaijan sends troops into Nagorno-Karabakh")
    assert seed["date_published"] == "2023-09-19T17:12:00Z"
    assert [i["date_published"] for i in items] == sorted((i["date_published"] for i in items), reverse=True)
    # A relative RSS link resolves against the channel's <link>, not the URL the feed was served at.
    assert any(i["url"] == "https://news.example.hk/news/1720002" for i in items)

    # Feed-level update time = newest item updated, in the body and the Last-Modified header.
    newest = max(datetime.fromisoformat(i["date_modified"]) for i in items)
    assert json.loads(body)["_tributary"]["updated"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rss_response.headers["Last-Modified"] == newest.strftime("%a, %d %b %Y %H:%M:%S GMT")

    # The broken source is recorded as that source's error; the others are fine.
    state = json.loads(await redis.get(keys.source_state("broken-src")))
    assert state["last_error_kind"] in {"parse", "not_a_feed"} and state["consecutive_failures"] == 1
    assert "last_error" not in json.loads(await redis.get(keys.source_state("rss-src")))  # stored only when set

    # Conditional GET of our own feed.
    etag = rss_response.headers["ETag"]
    again, _ = await get_feed(client, "rss", **{"If-None-Match": etag})
    assert again.status == 304
    again, _ = await get_feed(client, "rss", **{"If-Modified-Since": rss_response.headers["Last-Modified"]})
    assert again.status == 304

    # Unchanged re-poll: sources answer 304 to our validators, nothing changes.
    version = await redis.get(keys.feed_version("all"))
    clock.advance(61)
    await run_worker(settings, redis_url, clock)
    assert [r.status for r in feed_server.seen("/news.rss")] == [200, 304]
    assert feed_server.seen("/news.rss")[-1].headers["If-None-Match"] == feed_server.routes["/news.rss"].etag
    assert await redis.get(keys.feed_version("all")) == version
    unchanged, rss_again = await get_feed(client, "rss")
    assert rss_again == rss and unchanged.headers["ETag"] == etag

    # A publisher without validators re-serves the same bytes: parsed, but still no change.
    feed_server.routes["/news.atom"].conditional = False
    clock.advance(61)
    await run_worker(settings, redis_url, clock)
    assert await redis.get(keys.feed_version("all")) == version

    # A changed article is updated in place: same id, later `updated`, no duplicate.
    before = next(i for i in items if i["title"] == "Harbour ferry fares to rise")
    changed = (DATA / "e2e" / "news.rss").read_text().replace("five percent", "seven percent")
    feed_server.set("/news.rss", changed, content_type="application/rss+xml")
    clock.advance(61)
    await run_worker(settings, redis_url, clock)
    _, body = await get_feed(client, "json")
    items_after = json.loads(body)["items"]
    assert len(items_after) == 7
    after = next(i for i in items_after if i["id"] == before["id"])
    assert "seven percent" in after["content_html"]
    assert after["date_published"] == before["date_published"]
    assert datetime.fromisoformat(after["date_modified"]) == clock.now.replace(microsecond=0).astimezone(UTC)
    assert datetime.fromisoformat(after["date_modified"]) > datetime.fromisoformat(before["date_modified"])
    changed_response, _ = await get_feed(client, "rss")
    assert changed_response.headers["ETag"] != etag


async def test_feed_list_and_errors(journey, redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    settings, client = journey
    await run_worker(settings, redis_url, clock)
    response = await client.get("/feeds")
    listing = await response.json()
    assert listing["feeds"][0]["name"] == "all"
    assert listing["feeds"][0]["items"] == 7
    assert listing["feeds"][0]["urls"]["atom"] == "http://feeds.test/feeds/all.atom"
    missing = await client.get("/feeds/nope.rss")
    assert missing.status == 404
    assert (await missing.json())["error"]["status"] == 404
    assert (await client.get("/healthz")).status == 200
    # Unknown paths and methods are JSON errors too (the fallback route, no middleware).
    unknown = await client.get("/no/such/path")
    assert unknown.status == 404 and (await unknown.json())["error"]["status"] == 404
    wrong_method = await client.post("/feeds")
    assert wrong_method.status == 405 and "GET" in wrong_method.headers["Allow"]
    assert (await wrong_method.json())["error"]["status"] == 405
    bad_query = await client.get("/feeds/all.atom?limit=zero")
    assert bad_query.status == 400 and (await bad_query.json())["error"]["status"] == 400
