"""A changed feed's poll normalises only the entries that are new or changed: the others are
known, by key, to be stored unchanged (service/store/seen_entries.py, workers/normalise/read.py).
What is stored is the same as when every entry is normalised."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from service import keys
from service.config import SanitiseConfig, Settings
from service.models import Article
from service.store.seen_entries import KEY_BYTES
from tests.conftest import ManualClock
from tests.feedserver import FeedServer
from tests.pollkit import poll_settings, resources
from workers.ingest import drain as ingest
from workers.normalise.read import read_feed
from workers.poll.batch import poll_batch
from workers.resources import Resources

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rss(newest: int, count: int = 5) -> bytes:
    """``count`` items, newest first, the newest numbered ``newest``; item n's text never changes."""
    items = "".join(
        f"<item><guid>item-{n}</guid><title>Item {n}</title><link>https://news.example.com/{n}</link>"
        f'<description>Body of &lt;a href="/more/{n}"&gt;item {n}&lt;/a&gt;.</description>'
        f"<pubDate>Tue, 24 Nov 2026 {n % 24:02d}:00:00 GMT</pubDate></item>"
        for n in range(newest, newest - count, -1)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://news.example.com/</link>'
        f"{items}</channel></rss>"
    ).encode()


def read(body: bytes, settings: Settings, seen: frozenset[bytes] | None):  # type: ignore[no-untyped-def]
    return read_feed(
        body,
        source=settings.sources[0],
        settings=settings,
        now=NOW,
        content_type="application/rss+xml",
        headers={},
        seen=seen,
    )


def test_known_entries_are_passed_over_and_the_others_give_what_a_full_read_gives() -> None:
    settings = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    first = read(rss(10), settings, frozenset())
    assert len(first.articles) == 5 and not first.unchanged_keys
    known = frozenset(first.keys.values())

    second = read(rss(11), settings, known)  # one new item; four known
    full = read(rss(11), settings, None)
    assert [a.title for a in second.articles] == ["Item 11"]
    assert second.articles[0] == full.articles[0]
    assert len(second.unchanged_keys) == 4 and set(second.unchanged_keys) <= known
    assert not full.keys and not full.unchanged_keys  # no keys asked for: none computed

    changed = rss(11).replace(b'Body of &lt;a href="/more/9"', b'Body, corrected, of &lt;a href="/more/9"')
    third = read(changed, settings, known)
    assert sorted(a.title for a in third.articles) == ["Item 11", "Item 9"]


def test_keys_change_with_what_else_normalising_reads() -> None:
    base = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    keys_of = {
        name: set(read(rss(10), settings, frozenset()).keys.values())
        for name, settings in {
            "base": base,
            "sanitising": base.model_copy(update={"sanitise": SanitiseConfig(allow_data_images=True)}),
            "source": poll_settings([{"id": "s", "url": "https://news.example.com/feed", "name": "Renamed"}]),
        }.items()
    }
    assert keys_of["base"].isdisjoint(keys_of["sanitising"])
    assert keys_of["base"].isdisjoint(keys_of["source"])
    moved = rss(10).replace(
        b"<link>https://news.example.com/</link>", b"<link>https://elsewhere.example.com/</link>", 1
    )
    assert set(read(moved, base, frozenset()).keys.values()).isdisjoint(keys_of["base"])


def _one_source(redis: Redis, clock: ManualClock, feed_server: FeedServer) -> Resources:
    """One source serving ``rss(10)``, always in full (no validators), and a worker's resources."""
    url = feed_server.set("/feed", rss(10), conditional=False)
    return resources(poll_settings([{"id": "s", "url": url}]), redis, clock)


async def _poll_and_store(res: Resources, clock: ManualClock) -> dict[str, int]:
    reports = await poll_batch(res, res.settings.sources)
    await ingest.drain(res.redis, res.store, res.clock, "test")
    clock.advance(600)
    report = reports[0]
    return {"new": report.new, "updated": report.updated, "unchanged": report.unchanged}


async def test_polls_record_what_is_stored_unchanged_and_store_what_a_full_read_stores(
    redis, clock: ManualClock, feed_server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    res = _one_source(redis, clock, feed_server)
    seen_key = keys.seen_entries("s")
    try:
        assert await _poll_and_store(res, clock) == {"new": 5, "updated": 0, "unchanged": 0}
        assert not await redis.exists(seen_key)  # a first read looks nothing up and records nothing

        feed_server.set("/feed", rss(11), conditional=False)
        assert await _poll_and_store(res, clock) == {"new": 1, "updated": 0, "unchanged": 4}
        assert await redis.strlen(seen_key) == 4 * KEY_BYTES  # the four found stored unchanged (item 11 is only queued)

        feed_server.set("/feed", rss(12), conditional=False)
        assert await _poll_and_store(res, clock) == {"new": 1, "updated": 0, "unchanged": 4}
        assert await redis.strlen(seen_key) == 4 * KEY_BYTES  # 11 now stored; 7 left the feed

        ids = [i.decode() for i in await redis.zrange(keys.source_index("s"), 0, -1)]
        stored = {
            a.id: a for a in [Article.model_validate_json(raw) for raw in await redis.mget(map(keys.article, ids))]
        }
        full = read(rss(12), res.settings, None).articles
        assert all(stored[a.id].content_hash == a.content_hash for a in full)
        assert len(stored) == 7  # items 6..12, each stored once
    finally:
        await res.session.close()


async def test_an_article_an_operator_removes_comes_back_from_the_feed_as_before(
    redis, clock: ManualClock, feed_server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    res = _one_source(redis, clock, feed_server)
    try:
        await _poll_and_store(res, clock)
        await _poll_and_store(res, clock)
        assert await redis.strlen(keys.seen_entries("s")) == 5 * KEY_BYTES
        removed = (await redis.zrange(keys.source_index("s"), -1, -1))[0].decode()
        assert await res.store.remove_article(removed, clock())
        assert not await redis.exists(keys.seen_entries("s"))
        assert await _poll_and_store(res, clock) == {"new": 1, "updated": 0, "unchanged": 4}
        assert await redis.zscore(keys.source_index("s"), removed) is not None
    finally:
        await res.session.close()
