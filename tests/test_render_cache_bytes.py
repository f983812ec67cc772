"""The render cache is bounded in bytes: renderings and their compressed copies are counted,
the plain feeds pinned (but counted), queried snapshots evicted least recently used."""

from __future__ import annotations

import pytest

from service.config import settings_from_dict
from service.errors import ConfigError
from service.feeds.lru import ByteLRU
from service.feeds.query import parse_query
from service.store.articles import Store
from service.web.app import create_app
from service.web.appkeys import FEED_CACHE
from tests.test_feed_http import article, make_settings, seed

MIB = 1024 * 1024


def test_byte_lru_evicts_least_recent_unpinned_past_the_budget() -> None:
    evicted: list[str] = []
    lru: ByteLRU[str, object] = ByteLRU(100, on_evict=evicted.append)
    values = {k: object() for k in "pabcd"}
    lru.put("p", values["p"], 30, pinned=True)
    lru.put("a", values["a"], 30)
    lru.put("b", values["b"], 30)
    assert lru.bytes == 90 and evicted == []
    lru.get("a")  # a is now more recent than b
    lru.put("c", values["c"], 30)
    assert evicted == ["b"] and lru.bytes == 90
    lru.grew("a", values["a"], 40)  # a compressed copy was made: a is most recent, c goes
    assert evicted == ["b", "c"] and lru.bytes == 100
    lru.grew("c", values["c"], 1000)  # gone already: not counted
    assert lru.bytes == 100
    lru.put("d", values["d"], 500)  # bigger than the budget alone: everything unpinned goes
    assert lru.get("p") is values["p"] and lru.get("d") is None and lru.bytes == 30
    lru.put("p", values["p"], 70, pinned=True)  # a new version replaces the old, never added to it
    assert lru.bytes == 70


def test_budget_is_configurable_and_has_a_floor() -> None:
    assert settings_from_dict({}).server.render_cache_bytes == 64 * MIB
    assert settings_from_dict({"server": {"render_cache_bytes": 8 * MIB}}).server.render_cache_bytes == 8 * MIB
    with pytest.raises(ConfigError, match="render_cache_bytes"):
        settings_from_dict({"server": {"render_cache_bytes": 10}})


async def test_distinct_limits_stay_within_the_budget(redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings().model_copy(deep=True)
    settings.server.render_cache_bytes = 2 * MIB
    client, store = await aiohttp_client(create_app(settings, redis=redis)), Store(redis, settings)
    await seed(store, *(article(n, summary="<p>" + "words " * 2000 + "</p>") for n in range(300)))
    cache = client.app[FEED_CACHE]
    assert (await client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip"})).status == 200
    pinned = cache.cached_bytes
    assert pinned > 0
    for limit in range(100, 300, 5):  # distinct ?limit= each: 40 renderings of 1-3 MB of items each
        response = await client.get(f"/feeds/all.atom?limit={limit}", headers={"Accept-Encoding": "br"})
        assert response.status == 200
        await response.read()
        assert cache.cached_bytes <= 2 * MIB + pinned
    feed = settings.feeds[0]
    kept = await cache.snapshot(feed, parse_query([("limit", "295")], feed))
    assert cache.last_good("all") is not None  # the plain feed stays pinned
    assert kept.size > 0
