"""The change log: every committed change exactly once, in commit order, with tombstones for
retention, operators and merges; views of some feeds; /changes, its long-poll, 410 past the
retention; the SSE stream and its resume. Real Redis, real app."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from typing import Any

import pytest

from service import keys
from service.models import UpsertOutcome
from service.store.articles import Store
from service.store.changelog import (
    ChangedPart,
    ChangeKind,
    ChangeLog,
    LogEntry,
    Position,
    RemovalReason,
    as_seen_by,
)
from service.web.app import create_app
from tests.apikit import NOW, ApiClient, api_settings, article


async def entries(store: Store) -> list[LogEntry]:
    return await ChangeLog(store.redis).read(Position(0, 0), 10_000)


def summary(log: list[LogEntry]) -> list[tuple[int, str, str | None]]:
    return [(int(e.article_id, 16), e.kind, e.reason or e.changed) for e in log]


async def test_each_kind_of_write_leaves_its_entry(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, api_settings(storage={"retention_per_source": 2}))
    await store.upsert(article(1), NOW)
    await store.upsert(article(1), NOW)  # a re-poll: nothing
    await store.upsert(article(1, summary="<p>corrected</p>"), NOW)
    await store.upsert(article(2, "beta"), NOW)
    await store.upsert(article(102, "gamma", url="https://beta.example/2"), NOW)  # gamma's copy: provenance
    await store.upsert(article(3), NOW)
    await store.upsert(article(4), NOW)
    assert await store.trim_source("alpha", NOW) == 1  # keeps 3 and 4
    assert await store.remove_article(f"{3:032x}", NOW)
    assert not await store.remove_article(f"{3:032x}", NOW)  # once
    assert summary(await entries(store)) == [
        (1, "created", None),
        (1, "updated", "content"),
        (2, "created", None),
        (2, "updated", "sources"),
        (3, "created", None),
        (4, "created", None),
        (1, "removed", "retention"),
        (3, "removed", "removed"),
    ]
    log = await entries(store)
    assert log[2].after == ("news",) and log[6].before == ("tech",) and log[6].after == ()
    assert [e.position for e in log] == sorted(e.position for e in log)


async def test_a_stored_article_that_becomes_a_duplicate_is_merged_with_a_tombstone(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, api_settings())
    owner = article(1, "alpha", url="https://story.example/a")
    await store.upsert(owner, NOW)
    await store.upsert(article(2, "beta", url="https://beta.example/draft"), NOW)
    # beta's item now links to the story alpha has: the same article, merged into alpha's
    outcome = await store.upsert(article(2, "beta", url="https://story.example/a"), NOW + timedelta(minutes=5))
    assert outcome is UpsertOutcome.MERGED
    assert await store.article(f"{2:032x}") is None
    merged = await store.article(owner.id)
    assert merged is not None and [s.id for s in merged.sources] == ["alpha", "beta"]
    log = await entries(store)
    assert summary(log)[-2:] == [(2, "removed", "merged"), (1, "updated", "sources")]
    assert log[-2].merged_into == owner.id and log[-1].after == ("tech", "news")
    # beta's next poll of it is a merged copy like any other: nothing changes
    assert await store.upsert(article(2, "beta", url="https://story.example/a"), NOW) is UpsertOutcome.UNCHANGED
    assert len(await entries(store)) == len(log)


async def test_operator_merge_and_source_removal(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, api_settings())
    for n, source in ((1, "alpha"), (2, "beta"), (3, "beta")):
        await store.upsert(article(n, source), NOW)
    assert await store.merge_articles(f"{2:032x}", f"{1:032x}", NOW)
    assert await store.remove_source_articles("beta", NOW) == 2  # its own article 3; alpha's 1 only leaves its index
    assert await store.article(f"{1:032x}") is not None
    assert summary(await entries(store))[3:] == [
        (2, "removed", "merged"),
        (1, "updated", "sources"),
        (1, "updated", "feeds"),  # no longer in "news" through beta
        (3, "removed", "removed"),
    ]


@pytest.mark.parametrize(
    ("kind", "before", "after", "seen"),
    [
        ("created", (), ("tech",), ("created", None)),
        ("created", (), ("news",), None),
        ("updated", ("tech",), ("tech", "news"), ("updated", None)),
        ("updated", ("news",), ("tech",), ("created", None)),  # entered the view
        ("updated", ("tech",), ("news",), ("removed", "left_feed")),  # left it
        ("updated", ("news",), ("news",), None),
        ("removed", ("tech",), (), ("removed", "retention")),
        ("removed", ("news",), (), None),
    ],
)
def test_a_view_of_some_feeds_sees_entering_and_leaving(kind: str, before: tuple, after: tuple, seen: Any) -> None:  # type: ignore[type-arg]
    entry = LogEntry(
        Position(1, 0),
        "0" * 32,
        ChangeKind(kind),
        NOW,
        None,
        RemovalReason.RETENTION if kind == "removed" else None,
        None,
        ChangedPart.CONTENT if kind == "updated" else None,
        before,
        after,
    )
    got = as_seen_by(entry, frozenset({"tech"}))
    assert (None if got is None else (got.kind, got.reason)) == seen
    assert as_seen_by(entry, None) is not None


# -- the property: concurrent writers, a reader following the log --------------------------------


async def writer(store: Store, rng: random.Random, ops: int, outcomes: list[tuple[str, str]]) -> None:
    sources = ["alpha", "beta", "gamma"]
    for _ in range(ops):
        roll = rng.random()
        n = rng.randrange(1, 40)
        source = sources[n % 3]
        if roll < 0.6:
            shared = rng.random() < 0.2  # another source's copy of article n-1 sometimes
            url = f"https://story.example/{n - 1}" if shared else f"https://{source}.example/{n}"
            version = rng.randrange(3)
            title = f"Story {n} v{version}" + (" sponsored" if version == 2 else "")
            outcome = await store.upsert(article(n, source, url=url, title=title), NOW)
            outcomes.append((f"{n:032x}", outcome))
        elif roll < 0.75:
            await store.trim_source(source, NOW)
        elif roll < 0.85:
            await store.remove_article(f"{n:032x}", NOW)
        else:
            outcomes.append((f"{n:032x}", await store.upsert(article(n, source), NOW)))
        await asyncio.sleep(0)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_concurrent_ingest_misses_and_repeats_nothing(redis, redis_url, seed: int) -> None:  # type: ignore[no-untyped-def]
    from redis.asyncio import Redis

    settings = api_settings(storage={"retention_per_source": 6})
    rng = random.Random(seed)
    outcomes: list[tuple[str, str]] = []
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    followed: list[LogEntry] = []
    done = asyncio.Event()

    async def follow() -> None:
        log = ChangeLog(redis)
        position = Position(0, 0)
        while True:
            finished = done.is_set()
            page = await log.read(position, rng.randrange(1, 7))
            followed.extend(page)
            if page:
                position = page[-1].position
            elif finished:
                return
            await asyncio.sleep(0)

    try:
        reader = asyncio.create_task(follow())
        await asyncio.gather(
            *(writer(Store(c, settings), random.Random(seed * 10 + i), 120, outcomes) for i, c in enumerate(clients))
        )
        done.set()
        await reader
    finally:
        for c in clients:
            await c.aclose()
    store = Store(redis, settings)
    full = await entries(store)
    assert followed == full  # read while writing, in small pages: the same entries, once each, in order
    assert len({e.position for e in full}) == len(full)
    created = sum(1 for _, o in outcomes if o is UpsertOutcome.NEW)
    updated = sum(1 for _, o in outcomes if o is UpsertOutcome.UPDATED)
    assert created == sum(1 for e in full if e.kind is ChangeKind.CREATED)
    assert updated == sum(1 for e in full if e.changed is ChangedPart.CONTENT)
    # Replaying the log gives exactly what is stored, and the feeds each article is in now.
    alive: dict[str, tuple[str, ...]] = {}
    for e in full:
        if e.kind is ChangeKind.REMOVED:
            assert e.article_id in alive  # never a tombstone for something not there
            del alive[e.article_id]
        else:
            assert (e.kind is ChangeKind.CREATED) == (e.article_id not in alive)
            alive[e.article_id] = e.after
    stored = {i.decode() for i in await redis.zrange(keys.RECENT, 0, -1)}
    assert set(alive) == stored
    for feed in settings.feeds:
        members = {i.decode() for i in await redis.zrange(keys.feed_index(feed.name), 0, -1)}
        shown = {
            a.id for a in await store.articles(sorted(members)) if "sponsored" not in a.title or feed.name != "news"
        }
        assert {i for i, feeds in alive.items() if feed.name in feeds} == shown
    assert any(e.reason is RemovalReason.RETENTION for e in full) and any(
        e.reason is RemovalReason.REMOVED for e in full
    )


# -- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture
async def api(redis, aiohttp_client):  # type: ignore[no-untyped-def]
    from service.store.api_keys import ApiKeys

    settings = api_settings(api={"rate_per_minute": 10_000, "changelog_retention_days": 1})
    store = Store(redis, settings)
    _, token = await ApiKeys(redis).create("partner", NOW)
    client = await aiohttp_client(create_app(settings, redis=redis))
    return ApiClient(client, token), store


async def test_changes_pages_follow_the_log_and_views(api) -> None:  # type: ignore[no-untyped-def]
    client, store = api
    for n in range(1, 6):
        await store.upsert(article(n, "alpha" if n % 2 else "beta"), NOW)
    await store.remove_article(f"{1:032x}", NOW)
    status, page, headers = await client.get("/api/v1/changes?limit=4")
    assert status == 200 and page["more"] is True and len(page["changes"]) == 4
    assert 'rel="next"' in headers["Link"] and page["retention_seconds"] == 86400
    status, rest, _ = await client.get(f"/api/v1/changes?limit=4&cursor={page['next_cursor']}")
    records = page["changes"] + rest["changes"]
    assert rest["more"] is False
    assert [(int(r["id"], 16), r["kind"]) for r in records] == [(1, "created"), (2, "created"), (3, "created"),
                                                              (4, "created"), (5, "created"), (1, "removed")]  # fmt: skip
    assert records[0]["article"] is None  # removed since: the later record says so
    assert records[1]["article"]["title"] == "Story 2" and records[1]["article"]["feeds"] == ["news"]
    assert records[-1]["reason"] == "removed" and records[-1]["article"] is None
    _, tech, _ = await client.get("/api/v1/changes?feed=tech")
    assert [(int(r["id"], 16), r["kind"]) for r in tech["changes"]] == [(1, "created"), (3, "created"),
                                                                      (5, "created"), (1, "removed")]  # fmt: skip
    _, empty, _ = await client.get(f"/api/v1/changes?cursor={rest['next_cursor']}")
    assert empty["changes"] == [] and empty["next_cursor"] == rest["next_cursor"]


async def test_snapshot_then_changes_has_no_gap(api) -> None:  # type: ignore[no-untyped-def]
    client, store = api
    for n in range(1, 4):
        await store.upsert(article(n), NOW)
    _, snapshot, _ = await client.get("/api/v1/articles?feed=tech")
    await store.upsert(article(4), NOW)
    await store.upsert(article(2, title="Story 2 corrected"), NOW)
    _, changes, _ = await client.get(f"/api/v1/changes?feed=tech&cursor={snapshot['changes_cursor']}")
    assert [(int(r["id"], 16), r["kind"]) for r in changes["changes"]] == [(4, "created"), (2, "updated")]
    assert changes["changes"][1]["changed"] == "content"


async def test_long_poll_wakes_on_the_next_change(api) -> None:  # type: ignore[no-untyped-def]
    client, store = api
    _, first, _ = await client.get("/api/v1/changes")
    waiting = asyncio.create_task(client.get(f"/api/v1/changes?wait=20&cursor={first['next_cursor']}"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await store.upsert(article(9), NOW)
    status, page, _ = await asyncio.wait_for(waiting, 10)
    assert status == 200 and [int(r["id"], 16) for r in page["changes"]] == [9]


async def test_a_cursor_older_than_the_retention_gets_410_with_advice(api) -> None:  # type: ignore[no-untyped-def]
    client, store = api
    await store.upsert(article(1), NOW)
    _, page, _ = await client.get("/api/v1/changes")
    old_cursor = page["changes"][0]["cursor"]
    start = (await client.get("/api/v1/articles"))[1]["changes_cursor"]
    await store.upsert(article(2), NOW)
    await store.upsert(article(3), NOW)
    log = ChangeLog(store.redis)
    assert await log.trim(86400) == 0  # nothing is a day old
    cut = (await log.read(Position(0, 0), 3))[2].position
    assert await log.trim_before(cut) == 2  # as retention would, were the third the oldest young enough
    status, problem, _ = await client.get(f"/api/v1/changes?cursor={old_cursor}")
    assert status == 410 and problem["type"] == "urn:tributary:problem:cursor-expired"
    assert "snapshot" in problem["detail"] and problem["parameter"] == "cursor"
    assert (await client.get(f"/api/v1/changes?cursor={start}"))[0] == 410
    status, page, _ = await client.get("/api/v1/changes")  # no cursor: from the oldest record kept
    assert status == 200 and [int(r["id"], 16) for r in page["changes"]] == [3]


async def test_sse_stream_resumes_after_last_event_id(api) -> None:  # type: ignore[no-untyped-def]
    client, store = api
    for n in range(1, 4):
        await store.upsert(article(n), NOW)

    async def read_events(count: int, **headers: str) -> list[tuple[str, dict[str, Any]]]:
        response = await client.client.get(
            "/api/v1/stream?feed=tech", headers={"Authorization": f"Bearer {client.token}", **headers}
        )
        assert response.status == 200 and response.content_type == "text/event-stream"
        events: list[tuple[str, dict[str, Any]]] = []
        event_id, data = "", ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                events.append((event_id, json.loads(data)))
                data = ""
                if len(events) == count:
                    break
        response.close()
        return events

    first = await read_events(2)
    assert [int(e["id"], 16) for _, e in first] == [1, 2] and first[-1][0] == first[-1][1]["cursor"]
    await store.upsert(article(4), NOW)
    await store.upsert(article(7, "beta"), NOW)  # not in the view
    await store.upsert(article(5), NOW)
    resumed = await asyncio.wait_for(read_events(3, **{"Last-Event-ID": first[-1][0]}), 10)
    assert [int(e["id"], 16) for _, e in resumed] == [3, 4, 5]
    tampered = await client.client.get(
        "/api/v1/stream", headers={"Authorization": f"Bearer {client.token}", "Last-Event-ID": "nope"}
    )
    assert tampered.status == 400 and (await tampered.json(content_type=None))["parameter"] == "cursor"


@pytest.mark.parametrize(
    ("query", "slug", "parameter"),
    [
        ("limit=501", "limit-exceeded", "limit"),
        ("wait=31", "invalid-parameter", "wait"),
        ("feed=nope", "invalid-parameter", "feed"),
        ("since=1", "invalid-parameter", "since"),
    ],
)
async def test_changes_parameters_past_their_limits(api, query: str, slug: str, parameter: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    status, problem, _ = await client.get(f"/api/v1/changes?{query}")
    assert status == 400 and problem["type"] == "urn:tributary:problem:" + slug and problem["parameter"] == parameter
