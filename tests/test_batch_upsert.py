"""An ingest batch stored in one write leaves exactly what upserting its articles one by one leaves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from service import keys
from service.config import settings_from_dict
from service.models import Article, UpsertOutcome
from service.store.articles import Store, document
from service.store.upsert import Seen, plan_batch
from tests.conftest import reset_db
from workers.normalise.entry import normalise_entry
from workers.parse.types import ParsedEntry, ParsedFeed

T0 = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
NOW = datetime(2023, 9, 20, 0, 0, tzinfo=UTC)
SETTINGS = settings_from_dict(
    {
        "sources": [
            {"id": "a", "name": "Agency A", "url": "https://a.example/feed"},
            {"id": "b", "name": "Blog B", "url": "https://b.example/feed"},
        ],
        "feeds": [
            {"name": "all", "title": "All", "sources": ["a", "b"]},
            {"name": "only-b", "title": "B", "sources": ["b"]},
            {"name": "storms", "title": "Storms", "sources": ["a", "b"], "include_keywords": ["typhoon"]},
        ],
        "storage": {"max_revisions": 3},
    }
)


def article(source: str, guid: str, **fields: Any) -> Article:
    config = SETTINGS.source(source)
    assert config is not None
    entry = ParsedEntry(**{"guid": guid, "title": f"Story {guid}", "published": T0, **fields})
    return normalise_entry(entry, source=config, feed=ParsedFeed(), now=NOW)


def test_the_stored_document_is_the_model_dump() -> None:
    articles = [
        article("a", "1", summary="<p>caf\u00e9 \u2014 \U0001f600</p>", tags=("x", "y")),
        article("b", "2", link="https://b.example/p?q=1", content="<b>c</b>"),
    ]
    for one in articles:
        assert document(one) == one.model_dump_json().encode()


# -- pure -----------------------------------------------------------------------------------


def unseen(url_key: str | None = None, **found: Any) -> Seen:
    return Seen(**{"old": None, "alias": None, "url_key": url_key, "url_owner": None, **found})


def test_plan_writes_plain_news_and_changes_and_skips_the_unchanged() -> None:
    new, same, changed = article("a", "1"), article("a", "2"), article("a", "3", summary="two")
    old_changed = article("a", "3", summary="one")
    plan = plan_batch([new, same, changed], [unseen("u1"), unseen(old=same), unseen(old=old_changed)], NOW)
    assert [(w.index, w.outcome, w.claim_url) for w in plan.writes] == [
        (0, UpsertOutcome.NEW, "u1"),
        (2, UpsertOutcome.UPDATED, None),
    ]
    assert plan.writes[1].old == old_changed and plan.writes[1].stored.first_seen == old_changed.first_seen
    assert (plan.unchanged, plan.one_by_one) == ([1], [])


def test_plan_leaves_dedup_url_moves_and_repeats_to_the_one_article_path() -> None:
    batch = [
        article("a", "1"),  # another article owns its URL: perhaps a copy
        article("a", "2"),  # an alias: merged before
        article("a", "3", link="https://x.example/new"),  # its URL moves
        article("b", "4"),  # repeats the URL of the first
        article("a", "5"),  # plain, but repeats the id of the next...
        article("a", "5", summary="again"),  # ...which waits
    ]
    seen = [
        unseen("u1", url_owner="f" * 32),
        unseen(alias="e" * 32),
        unseen("u3", old=article("a", "3", link="https://x.example/old")),
        unseen("u1"),
        unseen(),
        unseen(),
    ]
    plan = plan_batch(batch, seen, NOW)
    assert [w.index for w in plan.writes] == [4]
    assert plan.one_by_one == [0, 1, 2, 3, 5]


# -- against the one-by-one path, on the real store -----------------------------------------------

BATCHES = [
    [
        article("a", "1", link="https://news.example/typhoon", summary="Typhoon signal 8"),
        article("a", "2", link="https://news.example/rain"),
        article("b", "1", link="https://news.example/typhoon?utm_source=b"),  # b's copy, same batch
        article("a", "1", link="https://news.example/typhoon", summary="Typhoon signal 9"),  # id again
        article("b", "2"),  # no URL
    ],
    [
        article("a", "1", link="https://news.example/typhoon", summary="Typhoon signal 9"),  # unchanged
        article("a", "2", link="https://news.example/rain", summary="Typhoon too"),  # changed, joins storms
        article("b", "3", link="https://news.example/rain"),  # a copy of a stored article
        article("b", "2", link="https://news.example/sun"),  # its URL moves
    ],
    [
        article("b", "1", link="https://news.example/typhoon"),  # merged before: an alias
        article("b", "4", link="https://news.example/sun"),  # the URL b-2 now owns, same source
        article("a", "2", link="https://news.example/rain", summary="Typhoon too"),  # unchanged
    ],
]


async def snapshot(redis: Redis) -> dict[str, Any]:
    """Every key's value; the change log's entries without their stream ids (commit times), by article."""
    found: dict[str, Any] = {}
    async for raw in redis.scan_iter(match=f"{keys.PREFIX}*"):
        key = raw.decode()
        kind = (await redis.type(key)).decode()
        if kind == "string":
            found[key] = await redis.get(key)
        elif kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            found[key] = await redis.lrange(key, 0, -1)
        elif kind == "set":
            found[key] = await redis.smembers(key)
        elif kind == "stream":  # each article's entries in order (deferred ones commit after the batch)
            entries = [fields for _, fields in await redis.xrange(key)]
            found[key] = sorted(entries, key=lambda fields: fields[b"id"])
    return found


@pytest.mark.parametrize("announce", [False, True])
async def test_batches_store_exactly_what_one_by_one_upserts_store(redis: Redis, announce: bool) -> None:
    store = Store(redis, SETTINGS)
    one_by_one = []
    for step, batch in enumerate(BATCHES):
        now = NOW + timedelta(hours=step)
        one_by_one.append([await store.upsert(a, now, announce=announce) for a in batch])
    expected = await snapshot(redis)
    await reset_db(redis)
    batched = [
        await store.upsert_many(batch, NOW + timedelta(hours=step), announce=announce)
        for step, batch in enumerate(BATCHES)
    ]
    assert batched == one_by_one
    assert {UpsertOutcome.NEW, UpsertOutcome.UPDATED, UpsertOutcome.UNCHANGED, UpsertOutcome.MERGED} <= {
        o for outcomes in batched for o in outcomes
    }
    assert await snapshot(redis) == expected


async def test_racing_batches_of_one_url_make_one_article(redis: Redis, redis_url: str) -> None:
    """Two workers storing batches that share a URL (and ids) at once: still one owner, each
    copy merged once, one change-log entry per change."""
    url = "https://news.example/shared"
    first = [article("a", f"{n}", link=f"https://news.example/a{n}") for n in range(30)]
    second = [article("b", f"{n}", link=f"https://news.example/b{n}") for n in range(30)]
    first.insert(15, article("a", "shared", link=url))
    second.insert(15, article("b", "shared", link=url))
    other = Redis.from_url(redis_url)
    try:
        results = await asyncio.gather(
            Store(redis, SETTINGS).upsert_many(first, NOW), Store(other, SETTINGS).upsert_many(second, NOW)
        )
    finally:
        await other.aclose()
    outcomes = sorted(str(o) for batch in results for o in batch)
    assert outcomes.count("merged") == 1 and outcomes.count("new") == 61
    owner = (await redis.get(keys.url_owner(url))).decode()
    stored = await Store(redis, SETTINGS).article(owner)
    assert stored is not None and {ref.id for ref in stored.sources} == {"a", "b"}
    assert await redis.xlen(keys.CHANGELOG) == 61 + 1  # every new article, and the owner's provenance
