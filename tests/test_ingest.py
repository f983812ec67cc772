"""The poll -> store hand-off is at least once, and the upsert makes it exactly-once in effect."""

import asyncio
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from service import keys
from service.config import settings_from_dict
from service.errors import WriteConflict
from service.models import Article, UpsertOutcome
from service.store.articles import Store
from workers.ingest import drain as ingest

T0 = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
SETTINGS = settings_from_dict(
    {
        "sources": [{"id": "s", "url": "https://s.example/feed"}],
        "feeds": [{"name": "f", "title": "F", "sources": ["s"]}],
    }
)


def article(n: int, summary: str = "body") -> Article:
    return Article(
        id=f"{n:032x}", source_id="s", title=f"t{n}", summary=summary, published=T0, updated=T0, first_seen=T0
    )


async def test_worker_killed_between_read_and_ack_loses_nothing(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await ingest.ensure_group(redis)
    await ingest.publish(redis, "s", [article(1), article(2)])
    # A consumer reads the entry and dies before acknowledging it.
    taken = await redis.xreadgroup(keys.INGEST_GROUP, "doomed", {keys.INGEST_STREAM: ">"}, count=10)
    assert len(taken[0][1]) == 1
    assert (await ingest.drain(redis, store, clock, "survivor", reclaim_idle_ms=60_000)).entries == 0
    report = await ingest.drain(redis, store, clock, "survivor", reclaim_idle_ms=0)
    assert report.outcomes == {UpsertOutcome.NEW: 2}
    assert await store.feed_count("f") == 2
    # Delivered again (at least once): the upsert changes nothing.
    await ingest.publish(redis, "s", [article(1), article(2)])
    report = await ingest.drain(redis, store, clock, "survivor")
    assert report.outcomes == {UpsertOutcome.UNCHANGED: 2}
    assert await redis.xlen(keys.INGEST_STREAM) == 0


async def test_an_upsert_losing_every_race_gives_up_and_its_entry_is_retried(redis, redis_url, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    contested = article(7)
    racer = Redis.from_url(redis_url)  # another client writing a key the upsert watches, nonstop
    racing_now, stop = asyncio.Event(), asyncio.Event()

    async def race() -> None:
        while not stop.is_set():
            await racer.set(keys.alias(contested.id), "elsewhere")
            racing_now.set()

    racing = asyncio.create_task(race())
    try:
        await racing_now.wait()
        with pytest.raises(WriteConflict):
            await store.upsert(contested, clock())
        await ingest.ensure_group(redis)
        await ingest.publish(redis, "s", [contested])
        report = await ingest.drain(redis, store, clock, "c")
        assert (report.dead, report.outcomes) == (0, {})
        assert (await redis.xpending(keys.INGEST_STREAM, keys.INGEST_GROUP))["pending"] == 1  # left for a retry
    finally:
        stop.set()
        await racing
        await racer.aclose()
    assert await store.article(contested.id) is None
    report = await ingest.drain(redis, store, clock, "c", reclaim_idle_ms=0)  # the race is over
    assert report.outcomes == {UpsertOutcome.NEW: 1} and await redis.xlen(keys.INGEST_STREAM) == 0
    assert await store.article(contested.id) == contested


async def test_an_entry_queued_by_another_process_stores_the_same_documents(redis, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await ingest.ensure_group(redis)
    mine, theirs = [article(1, "é \u2014 <b>x</b>"), article(2)], [article(3, "\U0001f600"), article(4)]
    await ingest.publish(redis, "s", mine)
    drained_here = await ingest.drain(redis, store, clock, "c")
    await ingest.publish(redis, "s", theirs)
    monkeypatch.setattr(ingest, "_handoff", ingest._Handoff())  # queued by another worker
    drained_from_json = await ingest.drain(redis, store, clock, "c")
    assert drained_here.outcomes == drained_from_json.outcomes == {UpsertOutcome.NEW: 2}
    for one in mine + theirs:
        assert await redis.get(keys.article(one.id)) == one.model_dump_json().encode()
    assert await redis.xlen(keys.INGEST_DEAD) == 0


async def test_undecodable_entry_goes_to_dead_letters(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await ingest.ensure_group(redis)
    await redis.xadd(keys.INGEST_STREAM, {"source_id": "s", "articles": "not json"})
    await ingest.publish(redis, "s", [article(3)])
    report = await ingest.drain(redis, store, clock, "c")
    assert report.dead == 1 and report.outcomes == {UpsertOutcome.NEW: 1}
    dead = await redis.xrange(keys.INGEST_DEAD)
    assert b"undecodable" in dead[0][1][b"error"]
    assert await redis.xlen(keys.INGEST_STREAM) == 0  # the stored entry acknowledged with its batch
    assert (await redis.xpending(keys.INGEST_STREAM, keys.INGEST_GROUP))["pending"] == 0


async def test_retention_keeps_newest(redis, clock) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from_dict(
        {**SETTINGS.model_dump(exclude={"redis_url"}), "storage": {"retention_per_source": 2}}
    )
    store = Store(redis, settings)
    for n in range(4):
        update = {"published": T0.replace(hour=n), "url": f"https://s.example/{n}"}
        await store.upsert(article(n).model_copy(update=update), clock())
    assert await store.trim_source("s") == 2
    assert [a.id for a in await store.feed_articles("f", 10)] == [f"{3:032x}", f"{2:032x}"]
    assert await redis.exists(keys.article(f"{0:032x}")) == 0
    # The trimmed articles' URL-owner keys go with them (else one key leaks per article ever seen).
    url_keys = [keys.url_owner(f"https://s.example/{n}") for n in range(4)]
    assert [await redis.get(k) for k in url_keys] == [None, None, f"{2:032x}".encode(), f"{3:032x}".encode()]


async def test_a_burst_moves_each_feed_version_once_per_batch(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await ingest.ensure_group(redis)
    pubsub = redis.pubsub()
    await pubsub.subscribe(store.changes_channel)
    for start in range(0, 200, 20):  # ten polls of twenty articles: one read batch
        await ingest.publish(redis, "s", [article(n) for n in range(start, start + 20)])
    before = await store.feed_version("f")
    report = await ingest.drain(redis, store, clock, "c")
    assert report.outcomes == {UpsertOutcome.NEW: 200}
    assert await store.feed_version("f") == before + 1  # not 200
    announced = []
    for _ in range(5):  # the subscribe confirmation reads as None too: a few reads, each bounded
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            announced.append(message["data"])
    assert announced == [b"f"]
    assert await redis.scard(keys.FEEDS_MOVED) == 0
    await pubsub.aclose()


async def test_marks_left_by_a_dead_drain_are_announced_by_the_next(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    await store.upsert(article(1), T0, announce=False)  # written, marked, then the worker died
    assert await store.feed_version("f") == 0 and await store.feed_count("f") == 1
    await ingest.drain(redis, store, clock, "next")  # nothing queued: the mark is still honoured
    assert await store.feed_version("f") == 1 and await redis.scard(keys.FEEDS_MOVED) == 0


def test_the_handoff_keeps_the_newest_entries_within_its_article_bound() -> None:
    handoff = ingest._Handoff(max_articles=3)
    first, second = ingest._Queued([article(1), article(2)], [b"1", b"2"]), ingest._Queued([article(3)], [b"3"])
    handoff.put(b"a", first)
    handoff.put(b"b", second)
    handoff.put(b"c", ingest._Queued([article(4)], [b"4"]))  # 4 articles held: the oldest entry goes
    assert handoff.take(b"a") is None and handoff.take(b"b") is second
    handoff.put(b"d", ingest._Queued([article(n) for n in range(5, 9)], [b"x"] * 4))  # alone past the bound
    assert handoff.take(b"d") is None and handoff.take(b"c") is None


def test_the_handoff_keeps_the_newest_entries_within_its_byte_bound() -> None:
    """Large articles (``[limits]`` allows a megabyte of content each) are bounded by their bytes,
    however few they are."""
    handoff = ingest._Handoff(max_articles=100, max_bytes=10)
    first, second = ingest._Queued([article(1)], [b"123456"]), ingest._Queued([article(2)], [b"1234"])
    handoff.put(b"a", first)
    handoff.put(b"b", second)  # 10 bytes held: within
    handoff.put(b"c", ingest._Queued([article(3)], [b"1"]))  # 11: the oldest entry goes
    assert handoff.take(b"a") is None and handoff.take(b"b") is second
    handoff.put(b"d", ingest._Queued([article(4)], [b"x" * 11]))  # alone past the bound: all go
    assert handoff.take(b"d") is None and handoff.take(b"c") is None
    handoff.put(b"e", ingest._Queued([article(5)], [b"x" * 10]))  # what was taken or forgotten no longer counts
    assert handoff.take(b"e") is not None
