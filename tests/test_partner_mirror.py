"""The example client of docs/partners.md, run as written against a live service while articles
are ingested, updated, merged, trimmed and removed: its SQLite mirror ends equal to the store."""

from __future__ import annotations

import asyncio
import json
import random
import re
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from service import keys
from service.feed_filter import feed_filter_matches
from service.store.api_keys import ApiKeys
from service.store.articles import Store
from service.web.app import create_app
from tests.apikit import NOW, api_settings, article
from tests.conftest import REPO_ROOT

FEEDS = ("tech", "news")


def example_client() -> dict[str, Any]:
    """The ```python block of docs/partners.md that defines ``mirror``, loaded as a module."""
    text = (REPO_ROOT / "docs" / "partners.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def mirror(" in b)
    assert 25 <= len(block.strip().splitlines()) <= 45  # about thirty lines, as promised
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/partners.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace


async def churn(store: Store, rng: random.Random, stop: asyncio.Event) -> int:
    """Ingest, content updates, cross-source copies, a stored article becoming a duplicate,
    retention and operator removals, until told to stop."""
    steps = 0
    sources = ("alpha", "beta", "gamma")
    while not stop.is_set() or steps < 60:
        n = rng.randrange(1, 80)
        source = sources[n % 3]
        roll = rng.random()
        if roll < 0.55:
            version = rng.randrange(4)
            title = f"Story {n} v{version}" + (" sponsored" if version == 3 else "")
            await store.upsert(article(n, source, title=title), NOW)
        elif roll < 0.7:  # another source's copy of n, or n's link moving onto another's story
            other = sources[(n + 1) % 3]
            await store.upsert(article(n + 100, other, url=f"https://{source}.example/{n}"), NOW)
        elif roll < 0.78:
            target = rng.randrange(1, 80)
            await store.upsert(article(n, source, url=f"https://{sources[target % 3]}.example/{target}"), NOW)
        elif roll < 0.9:
            await store.trim_source(source, NOW)
        else:
            await store.remove_article(f"{n:032x}", NOW)
        steps += 1
        await asyncio.sleep(0.002)  # let the client's requests interleave
    return steps


async def listing(base: str, token: str, feed: str) -> dict[str, Any]:
    """The store as the API shows it: every article of the feed, walked page by page."""
    found: dict[str, Any] = {}
    cursor = None
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        while True:
            params = {"feed": feed, "limit": "500"} | ({"cursor": cursor} if cursor else {})
            async with session.get(f"{base}/articles", params=params) as response:
                page = await response.json()
            found.update({a["id"]: a for a in page["items"]})
            cursor = page["next_cursor"]
            if cursor is None:
                return found


def rows(db_path: Path) -> dict[str, Any]:
    db = sqlite3.connect(db_path)
    try:
        return {i: json.loads(j) for i, j in db.execute("SELECT id, json FROM articles")}
    finally:
        db.close()


@pytest.mark.parametrize("seed", [7, 8])
async def test_the_documented_client_mirrors_a_feed_exactly(redis, aiohttp_server, tmp_path: Path, seed: int) -> None:  # type: ignore[no-untyped-def]
    client = example_client()
    client["PAGE"] = 4  # small pages: the snapshot walk spans many requests while ingest runs
    settings = api_settings(storage={"retention_per_source": 12}, api={"rate_per_minute": 100_000})
    store = Store(redis, settings)
    rng = random.Random(seed)
    for n in range(1, 30):
        await store.upsert(article(n, ("alpha", "beta", "gamma")[n % 3]), NOW)
    _, token = await ApiKeys(redis).create("mirror", NOW)
    server = await aiohttp_server(create_app(settings, redis=redis))
    base = f"http://127.0.0.1:{server.port}/api/v1"
    stop = asyncio.Event()
    ingest = asyncio.create_task(churn(store, rng, stop))
    cursors: dict[str, str | None] = dict.fromkeys(FEEDS)
    dbs = {feed: tmp_path / f"{feed}.db" for feed in FEEDS}
    for _ in range(4):  # catch up a few times while ingest runs
        for feed in FEEDS:
            cursors[feed] = await asyncio.to_thread(client["mirror"], base, token, feed, str(dbs[feed]), cursors[feed])
    stop.set()
    steps = await ingest
    for feed in FEEDS:
        cursors[feed] = await asyncio.to_thread(client["mirror"], base, token, feed, str(dbs[feed]), cursors[feed])
        mirrored = rows(dbs[feed])
        assert mirrored == await listing(base, token, feed)
        # ... and that is the store itself: the feed's index, its filters applied.
        members = [i.decode() for i in await redis.zrange(keys.feed_index(feed), 0, -1)]
        config = settings.feed(feed)
        assert config is not None
        shown = {a.id: a.content_hash for a in await store.articles(members) if feed_filter_matches(config, a)}
        assert {i: a["content_hash"] for i, a in mirrored.items()} == shown
        assert shown  # not trivially empty
    assert steps >= 60
