"""Dedup with provenance and revisions, through the real store on a real Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service import keys
from service.config import settings_from_dict
from service.models import Article, UpsertOutcome
from service.store.articles import Store
from service.store.dedup import add_sources, fuzzy_match, identifies_article
from tests.conftest import reset_db
from workers.normalise.entry import normalise_entry
from workers.parse.types import ParsedEntry, ParsedFeed

T0 = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
NOW = datetime(2023, 9, 20, 0, 0, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "sources": [
        {"id": "a", "name": "Agency A", "url": "https://a.example/feed"},
        {"id": "b", "name": "Blog B", "url": "https://b.example/feed"},
        {"id": "c", "url": "https://c.example/feed"},
    ],
    "feeds": [
        {"name": "all", "title": "All", "sources": ["a", "b", "c"]},
        {"name": "only-a", "title": "A", "sources": ["a"]},
        {"name": "only-b", "title": "B", "sources": ["b"]},
    ],
}
SETTINGS = settings_from_dict(CONFIG)


def article(source: str, now: datetime = NOW, **fields: Any) -> Article:
    config = SETTINGS.source(source)
    assert config is not None
    entry = ParsedEntry(**{"guid": f"{source}-1", "title": "Typhoon signal 8 raised", "published": T0, **fields})
    return normalise_entry(entry, source=config, feed=ParsedFeed(), now=now)


async def ids(store: Store, feed: str) -> list[str]:
    return [a.id for a in await store.feed_articles(feed, 50)]


# -- pure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "identifies"),
    [
        ("https://e.com/a", True),
        ("https://e.com/?p=1", True),
        ("https://e.com/", False),
        ("https://e.com", False),
        (None, False),
        ("x", False),
    ],
)
def test_identifies_article(url: str | None, identifies: bool) -> None:
    assert identifies_article(url) is identifies


def test_add_sources_keeps_the_owner_and_skips_known_sources() -> None:
    owner, copy = article("a"), article("b", now=NOW + timedelta(hours=1))
    merged = add_sources(owner, copy.sources)
    assert merged is not None
    assert [(r.id, r.name, r.first_seen) for r in merged.sources] == [
        ("a", "Agency A", NOW),
        ("b", "Blog B", NOW + timedelta(hours=1)),
    ]
    assert merged.content_hash == owner.content_hash and merged.title == owner.title
    assert add_sources(merged, copy.sources) is None


@pytest.mark.parametrize(
    ("title", "other_title", "source", "hours", "match"),
    [
        ("Typhoon signal 8 raised", "Typhoon Signal 8 raised!", "b", 1, True),
        ("Typhoon signal 8 raised", "Typhoon signal No. 8 raised", "b", 1, True),
        ("Typhoon signal 8 raised", "Typhoon signal 3 lowered", "b", 1, False),
        ("Typhoon signal 8 raised", "Typhoon signal 8 raised", "a", 1, False),  # same source: two items
        ("Typhoon signal 8 raised", "Typhoon signal 8 raised", "b", 49, False),  # outside 48 h
    ],
)
def test_fuzzy_match(title: str, other_title: str, source: str, hours: int, match: bool) -> None:
    from service.store.dedup import title_key

    candidates = [("x" * 32, source, title_key(other_title), (T0 + timedelta(hours=hours)).timestamp())]
    found = fuzzy_match(title, T0, candidates, source_id="a", threshold=0.9, window_hours=48)
    assert (found is not None) is match


# -- store ---------------------------------------------------------------------------------


async def test_same_canonical_url_from_two_sources_is_one_article(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    first = article("a", link="https://story.example/typhoon?utm_source=a")
    second = article(
        "b", now=NOW + timedelta(minutes=5), link="https://STORY.example/typhoon?fbclid=zz#top", title="Other words"
    )
    assert first.url == second.url == "https://story.example/typhoon" and first.id != second.id

    assert await store.upsert(first, NOW) is UpsertOutcome.NEW
    assert await store.upsert(second, NOW) is UpsertOutcome.MERGED
    # Merged feeds show it once, with both sources; single-source feeds show it too.
    assert await ids(store, "all") == [first.id]
    assert await ids(store, "only-a") == [first.id] and await ids(store, "only-b") == [first.id]
    stored = await store.article(first.id)
    assert stored is not None and stored.title == "Typhoon signal 8 raised"
    dump = stored.model_dump(mode="json")
    assert [(s["id"], s["name"], s["url"]) for s in dump["sources"]] == [
        ("a", "Agency A", "https://story.example/typhoon?utm_source=a"),
        ("b", "Blog B", "https://STORY.example/typhoon?fbclid=zz#top"),
    ]
    assert dump["sources"][1]["first_seen"] == "2023-09-20T00:05:00Z"
    assert await redis.exists(keys.article(second.id)) == 0
    # The copy's re-poll is cheap (its hash is known) and changes nothing.
    assert await store.known_hashes([second.id]) == [second.content_hash]
    version = await store.feed_version("all")
    assert await store.upsert(second, NOW) is UpsertOutcome.UNCHANGED
    assert await store.feed_version("all") == version


async def test_same_url_within_one_source_is_not_merged_across_guids(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    one = article("a", guid="g1", link="https://story.example/x")
    two = article("a", guid="g2", link="https://story.example/x", title="Another")
    assert [await store.upsert(one, NOW), await store.upsert(two, NOW)] == [UpsertOutcome.NEW, UpsertOutcome.NEW]
    assert len(await ids(store, "only-a")) == 2


async def test_site_root_links_are_not_merged(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    assert await store.upsert(article("a", link="https://portal.example/"), NOW) is UpsertOutcome.NEW
    assert await store.upsert(article("b", link="https://portal.example/"), NOW) is UpsertOutcome.NEW
    assert len(await ids(store, "all")) == 2


async def test_concurrent_sources_racing_on_one_url_make_one_article(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    copies = [article(s, link="https://story.example/race") for s in ("a", "b", "c")]
    outcomes = await asyncio.gather(*(store.upsert(c, NOW) for c in copies))
    assert sorted(outcomes) == sorted([UpsertOutcome.NEW, UpsertOutcome.MERGED, UpsertOutcome.MERGED])
    (only,) = await store.feed_articles("all", 10)
    assert sorted(s.id for s in only.sources) == ["a", "b", "c"]


async def test_fuzzy_titles_are_opt_in(redis) -> None:  # type: ignore[no-untyped-def]
    a = article("a", link="https://a.example/1")
    b = article("b", link="https://b.example/2", title="Typhoon Signal 8 raised.", published=T0 + timedelta(hours=3))
    store = Store(redis, SETTINGS)
    assert [await store.upsert(a, NOW), await store.upsert(b, NOW)] == [UpsertOutcome.NEW, UpsertOutcome.NEW]
    await reset_db(redis)
    fuzzy = settings_from_dict({**CONFIG, "dedup": {"fuzzy_titles": True}})
    store = Store(redis, fuzzy)
    assert [await store.upsert(a, NOW), await store.upsert(b, NOW)] == [UpsertOutcome.NEW, UpsertOutcome.MERGED]
    assert await ids(store, "all") == [a.id]


async def test_retention_of_a_merging_source_keeps_the_owners_article(redis) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from_dict({**CONFIG, "storage": {"retention_per_source": 1}})
    store = Store(redis, settings)
    owned = article("a", link="https://story.example/shared")
    await store.upsert(owned, NOW)
    await store.upsert(article("b", link="https://story.example/shared"), NOW)
    await store.upsert(article("b", guid="b-2", link="https://b.example/own", published=T0 + timedelta(hours=1)), NOW)
    assert await store.trim_source("b") == 1
    assert await store.article(owned.id) is not None
    assert owned.id in await ids(store, "all") and owned.id not in await ids(store, "only-b")


# -- revisions ------------------------------------------------------------------------------


async def test_revisions_keep_previous_versions(redis) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from_dict({**CONFIG, "storage": {"max_revisions": 2}})
    store = Store(redis, settings)
    base = article("a", link="https://story.example/r", summary="<p>v0</p>")
    assert await store.upsert(base, NOW) is UpsertOutcome.NEW
    # Unchanged re-poll, reordered/restamped, or only a tracking parameter changed: no revision.
    for same in (
        base,
        article("a", now=NOW + timedelta(hours=1), link="https://story.example/r", summary="<p>v0</p>"),
        article("a", link="https://story.example/r?utm_source=twitter&utm_medium=social", summary="<p>v0</p>"),
        article("a", link="https://story.example/r", summary="<p>v0</p>", guid="a-1"),
    ):
        assert await store.upsert(same, NOW + timedelta(hours=1)) is UpsertOutcome.UNCHANGED
    assert await store.revisions(base.id) == []

    for n in (1, 2, 3):
        changed = article("a", link="https://story.example/r", summary=f"<p>v{n}</p>")
        assert await store.upsert(changed, NOW + timedelta(hours=n)) is UpsertOutcome.UPDATED
    revisions = await store.revisions(base.id)
    assert [r.summary for r in revisions] == ["<p>v2</p>", "<p>v1</p>"]  # newest first, capped at 2
    assert [r.replaced_at for r in revisions] == [NOW + timedelta(hours=3), NOW + timedelta(hours=2)]
    stored = await store.article(base.id)
    assert stored is not None and stored.summary == "<p>v3</p>" and stored.updated == NOW + timedelta(hours=3)
    assert stored.first_seen == NOW and revisions[0].content_hash != stored.content_hash


async def test_articles_stored_without_provenance_still_merge_with_named_sources(redis) -> None:  # type: ignore[no-untyped-def]
    store = Store(redis, SETTINGS)
    legacy = article("a", link="https://story.example/old").model_copy(update={"sources": ()})
    bare = article("b", link="https://story.example/old").model_copy(update={"sources": ()})
    await store.upsert(legacy, NOW)
    assert await store.upsert(bare, NOW) is UpsertOutcome.MERGED
    stored = await store.article(legacy.id)
    assert stored is not None
    assert [(r.id, r.name, r.link) for r in stored.sources] == [
        ("a", "Agency A", "https://a.example/feed"),
        ("b", "Blog B", "https://b.example/feed"),
    ]
