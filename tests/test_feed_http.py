"""Merged feeds over HTTP, against the real app and a real Redis: caching, compression,
negotiation, filters, paging, the human view, OPML, and change announcements."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import brotli
import feedparser
import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from service import keys
from service.config import Settings, settings_from_dict
from service.feeds.cache import MAX_QUERY_ENTRIES
from service.feeds.query import parse_query
from service.feeds.render.xmltext import article_uri
from service.models import Article
from service.store.articles import Store
from service.web.app import create_app
from service.web.appkeys import FEED_CACHE, FEED_WATCH
from tests.feedcheck import atom_schema, jsonfeed_validator
from tests.test_render import HOSTILE_ARTICLE

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
READER_ACCEPT = (
    "application/rss+xml, application/rdf+xml;q=0.8, application/atom+xml;q=0.6, application/xml;q=0.4, text/xml;q=0.4"
)


def make_settings(**feed: object) -> Settings:
    return settings_from_dict(
        {
            "server": {"base_url": "http://feeds.test"},
            "sources": [
                {"id": "alpha", "url": "https://alpha.example/feed.xml", "name": "Alpha", "tags": ["tech"]},
                {"id": "beta", "url": "https://beta.example/rss", "name": "Beta", "tags": ["news"]},
            ],
            "feeds": [{"name": "all", "title": "Everything", "sources": ["alpha", "beta"], "limit": 10} | feed],
        }
    )


def article(n: int, source: str = "alpha", **fields: object) -> Article:
    published = T0 + timedelta(minutes=n)
    base: dict[str, object] = {
        "id": f"{n:032x}",
        "source_id": source,
        "url": f"https://{source}.example/{n}",
        "title": f"Story {n}",
        "summary": f"<p>Summary {n}</p>",
        "published": published,
        "updated": published,
        "first_seen": published,
    }
    return Article(**(base | fields))


async def seed(store: Store, *articles: Article) -> None:
    for a in articles:
        await store.upsert(a, a.first_seen)


@pytest.fixture
async def app_client(redis, aiohttp_client):  # type: ignore[no-untyped-def]
    async def make(settings: Settings | None = None, **options: object) -> tuple[TestClient, Store]:
        settings = settings or make_settings()
        client = await aiohttp_client(create_app(settings, redis=redis, **options))
        return client, Store(redis, settings)

    return make


# -- HTTP caching ----------------------------------------------------------------------------


async def test_validators_304_head_and_cache_control(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(store, article(1), article(2, updated=T0 + timedelta(hours=5)))
    plain = {"Accept-Encoding": "identity"}
    response = await client.get("/feeds/all.atom", headers=plain)
    body = await response.read()
    etag = response.headers["ETag"]
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["Last-Modified"] == format_datetime(T0 + timedelta(hours=5), usegmt=True)
    assert response.headers["Link"] == (
        '<http://feeds.test/hub>; rel="hub", <http://feeds.test/feeds/all.atom>; rel="self"'
    )
    assert etag.startswith('"') and not etag.startswith("W/")

    for if_none_match in (etag, f'"nope", {etag}', f"W/{etag}", "*", etag[:-1] + '-gzip"'):
        again = await client.get("/feeds/all.atom", headers=plain | {"If-None-Match": if_none_match})
        assert again.status == 304, if_none_match
        assert await again.read() == b""
        assert again.headers["ETag"] == etag
    assert (await client.get("/feeds/all.atom", headers={"If-None-Match": '"other"'})).status == 200
    since = {"If-Modified-Since": response.headers["Last-Modified"]}
    assert (await client.get("/feeds/all.atom", headers=since)).status == 304
    older = {"If-Modified-Since": format_datetime(T0, usegmt=True)}
    assert (await client.get("/feeds/all.atom", headers=older)).status == 200
    # If-None-Match wins over If-Modified-Since.
    both = since | {"If-None-Match": '"other"'}
    assert (await client.get("/feeds/all.atom", headers=both)).status == 200

    head = await client.head("/feeds/all.atom", headers=plain)
    assert head.status == 200 and head.headers["ETag"] == etag and await head.read() == b""
    assert int(head.headers["Content-Length"]) == len(body)


async def test_cache_max_age_is_configurable(app_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings()
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"cache_max_age": 300})})
    client, _ = await app_client(settings)
    response = await client.get("/feeds/all.rss")
    assert response.headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("*", "br"),
        ("identity", None),
        ("gzip;q=0, br;q=0", None),
        ("identity;q=1, gzip;q=0.5", None),
        ("deflate", None),
    ],
)
async def test_compression_by_accept_encoding(app_client, accept_encoding: str, coding: str | None) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(store, *(article(n) for n in range(5)))
    plain = await (await client.get("/feeds/all.rss", headers={"Accept-Encoding": "identity"})).read()
    response = await client.get("/feeds/all.rss", headers={"Accept-Encoding": accept_encoding}, auto_decompress=False)
    raw = await response.read()
    assert response.headers.get("Content-Encoding") == coding
    assert response.headers["Vary"] == "Accept-Encoding"
    decoded = {"br": brotli.decompress, "gzip": gzip.decompress, None: lambda b: b}[coding](raw)
    assert decoded == plain
    if coding is not None:
        assert response.headers["ETag"].endswith(f'-{coding}"')
        # The compressed bytes are made once per change and served from the cache.
        cache = client.app[FEED_CACHE]
        rendered = (await cache.snapshot(cache.settings.feeds[0])).rendered("rss")
        assert rendered.encoded(coding) is rendered.encoded(coding) and rendered.encoded(coding) == raw
        again = await client.get(
            "/feeds/all.rss",
            headers={"Accept-Encoding": accept_encoding, "If-None-Match": response.headers["ETag"]},
        )
        assert again.status == 304


async def test_bytes_and_etag_change_only_with_content(app_client, redis) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client(watch_changes=False)
    await seed(store, article(1), article(2))
    first = await client.get("/feeds/all.json")
    body = await first.read()
    await redis.incr(keys.feed_version("all"))  # a version bump with nothing changed
    await seed(store, article(1))  # an unchanged re-poll
    second = await client.get("/feeds/all.json")
    assert await second.read() == body and second.headers["ETag"] == first.headers["ETag"]
    await seed(store, article(3))
    third = await client.get("/feeds/all.json")
    assert third.headers["ETag"] != first.headers["ETag"]
    assert json.loads(await third.read())["_tributary"]["updated"] == "2026-01-01T12:03:00Z"


# -- negotiation and the human view ----------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "fmt", "content_type"),
    [
        (None, "atom", "application/atom+xml"),
        ("*/*", "atom", "application/atom+xml"),
        ("application/rss+xml", "rss", "application/rss+xml"),
        (READER_ACCEPT, "rss", "application/rss+xml"),
        ("application/feed+json", "json", "application/feed+json"),
        ("application/json;q=0.9, application/atom+xml;q=0.5", "json", "application/feed+json"),
        ("application/xml", "atom", "application/atom+xml"),
        (BROWSER_ACCEPT, "html", "text/html"),
        ("image/png", "atom", "application/atom+xml"),
    ],
)
async def test_content_negotiation(app_client, accept: str | None, fmt: str, content_type: str) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(store, article(1))
    headers = {"Accept": accept} if accept else {}
    response = await client.get("/feeds/all", headers=headers, skip_auto_headers=() if accept else ("Accept",))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith(content_type)
    assert response.headers["Vary"] == "Accept, Accept-Encoding"
    if fmt != "html":
        direct = await client.get(f"/feeds/all.{fmt}")
        assert await response.read() == await direct.read()
        assert f'<http://feeds.test/feeds/all.{fmt}>; rel="self"' in response.headers["Link"]


async def test_html_view_is_escaped_and_links_every_format(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(
        store,
        article(1, title="<script>alert(1)</script> & co", summary="<p>Hi <img src=x onerror=alert(2)> there</p>"),
        article(2, source="beta", url="javascript:alert(3)"),
    )
    response = await client.get("/feeds/all", headers={"Accept": BROWSER_ACCEPT})
    page = await response.text()
    assert "<script" not in page and "onerror" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "Hi there" in page
    for fmt in ("atom", "rss", "json"):
        assert f'href="http://feeds.test/feeds/all.{fmt}"' in page
    # A lenient HTML parser sees a whole page: one heading per item plus the title.
    doc = etree.HTML(page.encode())
    assert len(doc.xpath("//article")) == 2
    assert response.headers["ETag"]
    assert (
        await client.get("/feeds/all", headers={"Accept": BROWSER_ACCEPT, "If-None-Match": response.headers["ETag"]})
    ).status == 304


async def test_index_lists_every_feed(app_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = await app_client()
    response = await client.get("/")
    page = await response.text()
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'href="http://feeds.test/feeds/all"' in page and "Everything" in page
    assert 'href="http://feeds.test/feeds/all.rss"' in page
    # The JSON list and the existing URLs are untouched.
    listing = await (await client.get("/feeds")).json()
    assert listing["feeds"][0]["urls"] == {f: f"http://feeds.test/feeds/all.{f}" for f in ("rss", "atom", "json")}


# -- filters and query parameters -------------------------------------------------------------


async def titles(client: TestClient, url: str) -> list[str]:
    response = await client.get(url)
    assert response.status == 200, await response.text()
    return [item["title"] for item in json.loads(await response.read())["items"]]


async def test_query_parameters(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(
        store,
        article(1, title="Python 3.13 released", tags=("Programming",)),
        article(2, source="beta", title="Election night", summary="<p>Votes counted in <b>Hong Kong</b></p>"),
        article(3, title="Pythonic idioms", tags=("programming",)),
        article(4, source="beta", title="Weather"),
    )
    assert await titles(client, "/feeds/all.json?source=beta") == ["Weather", "Election night"]
    assert await titles(client, "/feeds/all.json?tag=PROGRAMMING") == ["Pythonic idioms", "Python 3.13 released"]
    assert await titles(client, "/feeds/all.json?tag=news") == ["Weather", "Election night"]  # source tag
    assert await titles(client, "/feeds/all.json?q=python") == ["Python 3.13 released"]  # word-ish
    assert await titles(client, "/feeds/all.json?q=hong+KONG") == ["Election night"]  # summary text
    assert await titles(client, "/feeds/all.json?limit=1") == ["Weather"]
    assert await titles(client, "/feeds/all.json?tag=news&source=alpha") == []
    # The self link carries the normalised query; two spellings share one cache entry.
    doc = json.loads(await (await client.get("/feeds/all.json?q=%20Hong%20%20kong&unknown=1")).read())
    assert doc["feed_url"] == "http://feeds.test/feeds/all.json?q=hong+kong"
    cache = client.app[FEED_CACHE]
    feed = cache.settings.feeds[0]
    spelled = await cache.snapshot(feed, parse_query([("q", " Hong  kong"), ("unknown", "1")], feed))
    assert await cache.snapshot(feed, parse_query([("q", "hong kong")], feed)) is spelled


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "limit=-1",
        "cursor=%%%",
        "cursor=bm9wZQ",
        "q=" + "x" * 201,
        "limit=1&limit=2",
    ],
)
async def test_bad_query_is_a_400_json_error(app_client, query: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = await app_client()
    response = await client.get(f"/feeds/all.atom?{query}")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["status"] == 400 and error["message"]


async def test_query_cache_is_bounded(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(store, article(1))
    cache = client.app[FEED_CACHE]
    feed = cache.settings.feeds[0]
    queries = [parse_query([("q", f"word{n}")], feed) for n in range(MAX_QUERY_ENTRIES + 40)]
    built = [await cache.snapshot(feed, query) for query in queries]
    # A cached query hands back the same snapshot, an evicted one is built anew: the newest
    # MAX_QUERY_ENTRIES are all kept, and the one before them is gone (checked first: a miss evicts).
    for query, snapshot in zip(queries[40:], built[40:], strict=True):
        assert await cache.snapshot(feed, query) is snapshot
    assert await cache.snapshot(feed, queries[39]) is not built[39]


async def test_configured_filters(app_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        include_keywords=["python", "rust"],
        exclude_keywords=["Sponsored"],
        languages=["en"],
        min_date=(T0 + timedelta(minutes=2)).isoformat(),
    )
    client, store = await app_client(settings)
    await seed(
        store,
        article(1, title="Python before the cut-off"),
        article(2, title="Rust 2.0", language="en-GB"),
        article(3, title="Python, sponsored", summary="<p>SPONSORED content</p>"),
        article(4, title="Python auf Deutsch", language="de"),
        article(5, title="Pythonista news"),  # not the word "python"
        article(6, title="All about python", language=None),  # no language declared: kept
    )
    assert await titles(client, "/feeds/all.json") == ["All about python", "Rust 2.0"]


# -- paging (RFC 5005) -----------------------------------------------------------------------


async def walk(client: TestClient, url: str, between_pages=None) -> list[str]:  # type: ignore[no-untyped-def]
    """Follow next_url to the end, like a reader backfilling history; returns item ids seen."""
    seen: list[str] = []
    pages = 0
    while url:
        response = await client.get(url.removeprefix("http://feeds.test"))
        assert response.status == 200, await response.text()
        doc = json.loads(await response.read())
        seen += [item["id"] for item in doc["items"]]
        url = doc.get("next_url")
        pages += 1
        assert pages < 100
        if between_pages is not None:
            await between_pages(pages)
    return seen


async def test_walking_pages_while_items_arrive_sees_each_once(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    # Ties on published time too, so the id tiebreak is exercised.
    originals = [
        article(n, source="alpha" if n % 2 else "beta", published=T0 + timedelta(minutes=n // 3)) for n in range(23)
    ]
    await seed(store, *originals)
    arrivals = iter(range(100, 130))

    async def new_items_arrive(page: int) -> None:
        for _ in range(3):
            n = next(arrivals)
            await seed(store, article(n, published=T0 + timedelta(hours=1, minutes=n)))

    seen = await walk(client, "/feeds/all.json?limit=4", new_items_arrive)
    assert sorted(seen) == sorted(article_uri(a) for a in originals)  # every one, none twice
    assert len(seen) == len(set(seen))
    # The walk from the top now starts with the newcomers and still covers everything once.
    everything = await walk(client, "/feeds/all.json?limit=7")
    assert len(everything) == len(set(everything)) == await store.feed_count("all")


async def test_paged_xml_links_and_filters(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    await seed(store, *(article(n, source="beta" if n % 3 == 0 else "alpha") for n in range(12)))
    url = "/feeds/all.atom?source=beta&limit=2"
    ids: list[str] = []
    while url:
        parsed = feedparser.parse(await (await client.get(url)).read())
        assert parsed.bozo == 0
        links = {link.rel: link.href for link in parsed.feed.links}
        assert links["hub"] == "http://feeds.test/hub"
        ids += [e.id for e in parsed.entries]
        url = links.get("next", "").removeprefix("http://feeds.test")
        if url:
            assert links["prev-archive"] == links["next"]
    assert ids == [article_uri(article(n)) for n in (9, 6, 3, 0)]
    rss = feedparser.parse(await (await client.get("/feeds/all.rss?limit=5")).read())
    assert rss.bozo == 0 and any(link.rel == "next" for link in rss.feed.links)


# -- validity through the whole stack --------------------------------------------------------


async def test_stored_hostile_article_is_served_valid(app_client) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    # Redis holds UTF-8 JSON, so a stored article cannot carry lone surrogates; all else stays.
    hostile = Article.model_validate(
        {
            **{k: _no_lone_surrogates(v) for k, v in HOSTILE_ARTICLE.model_dump().items()},
            "source_id": "beta",
            "published": T0,
            "updated": T0,
            "first_seen": T0,
        }
    )
    await seed(store, hostile, article(1), article(2, updated=T0 + timedelta(days=1)))
    stored = await store.feed_articles("all", 10)
    for fmt in ("rss", "atom"):
        body = await (await client.get(f"/feeds/all.{fmt}")).read()
        parsed = feedparser.parse(body)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert [e.id for e in parsed.entries] == [article_uri(a) for a in stored]
        assert [datetime(*e.updated_parsed[:6], tzinfo=UTC) for e in parsed.entries] == [a.updated for a in stored]
        assert datetime(*parsed.feed.updated_parsed[:6], tzinfo=UTC) == T0 + timedelta(days=1)
    atom = etree.fromstring(await (await client.get("/feeds/all.atom")).read())
    schema = atom_schema()
    assert schema.validate(atom), schema.error_log
    doc = json.loads(await (await client.get("/feeds/all.json")).read())
    assert [e.message for e in jsonfeed_validator().iter_errors(doc)] == []
    assert [i["id"] for i in doc["items"]] == [article_uri(a) for a in stored]


def _no_lone_surrogates(value):  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    if isinstance(value, (list, tuple)):
        return type(value)(_no_lone_surrogates(v) for v in value)
    if isinstance(value, dict):
        return {k: _no_lone_surrogates(v) for k, v in value.items()}
    return value


# -- OPML ------------------------------------------------------------------------------------


async def test_opml_lists(app_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = await app_client()
    feeds = etree.fromstring(await (await client.get("/feeds.opml")).read())
    assert [(o.get("title"), o.get("xmlUrl"), o.get("htmlUrl")) for o in feeds.iter("outline")] == [
        ("Everything", "http://feeds.test/feeds/all.atom", "http://feeds.test/feeds/all")
    ]
    response = await client.get("/sources.opml")
    assert response.headers["Content-Type"].startswith("text/x-opml")
    sources = etree.fromstring(await response.read())
    assert [
        (o.get("title"), o.get("xmlUrl"), o.get("htmlUrl")) for o in sources.iter("outline") if o.get("xmlUrl")
    ] == [
        ("Alpha", "https://alpha.example/feed.xml", "https://alpha.example/"),
        ("Beta", "https://beta.example/rss", "https://beta.example/"),
    ]


# -- change announcements --------------------------------------------------------------------


async def wait_for(predicate, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_cached_path_trusts_announcements_not_redis(app_client, redis) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    watch = client.app[FEED_WATCH]
    assert watch.connected
    before = watch.stamp("all")
    await seed(store, article(1))
    await wait_for(lambda: watch.stamp("all") != before)  # the write's announcement arrived
    assert await titles(client, "/feeds/all.json") == ["Story 1"]

    # A version bump nobody announced is not seen while the cache may trust itself: no GET...
    await redis.incr(keys.feed_version("all"))
    await redis.zadd(keys.feed_index("all"), {f"{7:032x}": 0})
    await redis.set(keys.article(f"{7:032x}"), article(7).model_dump_json())
    assert await titles(client, "/feeds/all.json") == ["Story 1"]
    # ...until it is older than max_staleness (the safety net if a message were lost).
    watch.max_staleness = 0
    assert await titles(client, "/feeds/all.json") == ["Story 7", "Story 1"]
    watch.max_staleness = 60

    # A real write announces itself and is served at once.
    cache = client.app[FEED_CACHE]
    assert cache.fresh("all") is not None
    await seed(store, article(9))
    await wait_for(lambda: cache.fresh("all") is None)
    assert (await titles(client, "/feeds/all.json"))[0] == "Story 9"


async def test_without_subscription_every_request_reads_the_version(app_client, redis) -> None:  # type: ignore[no-untyped-def]
    client, store = await app_client()
    watch = client.app[FEED_WATCH]
    await seed(store, article(1))
    assert await titles(client, "/feeds/all.json") == ["Story 1"]
    await watch.stop()  # the subscription is gone
    assert not watch.connected
    await redis.incr(keys.feed_version("all"))
    await redis.zadd(keys.feed_index("all"), {f"{7:032x}": 0})
    await redis.set(keys.article(f"{7:032x}"), article(7).model_dump_json())
    assert await titles(client, "/feeds/all.json") == ["Story 7", "Story 1"]


async def test_conditional_get_across_two_web_processes_after_an_ingest(app_client, redis) -> None:  # type: ignore[no-untyped-def]
    """Each web process trusts its cached version until an announcement: after a write, both
    answer a reader's old ETag with the new content, under the same new ETag."""
    first, store = await app_client()
    second, _ = await app_client()
    await seed(store, article(1))
    plain = {"Accept-Encoding": "identity"}
    old = [await client.get("/feeds/all.atom", headers=plain) for client in (first, second)]
    assert old[0].headers["ETag"] == old[1].headers["ETag"]
    etag = old[0].headers["ETag"]
    for client in (first, second):  # both now serve from their caches, with no Redis round trip
        assert (await client.get("/feeds/all.atom", headers=plain | {"If-None-Match": etag})).status == 304
        assert client.app[FEED_CACHE].fresh("all") is not None

    await seed(store, article(2))  # an ingest, as the workers do it
    caches = [client.app[FEED_CACHE] for client in (first, second)]
    await wait_for(lambda: all(cache.fresh("all") is None for cache in caches))
    new = [await client.get("/feeds/all.atom", headers=plain | {"If-None-Match": etag}) for client in (first, second)]
    assert [r.status for r in new] == [200, 200]
    assert new[0].headers["ETag"] == new[1].headers["ETag"] != etag
    assert "Story 2" in (await new[1].text())
    for client in (first, second):
        again = await client.get("/feeds/all.atom", headers=plain | {"If-None-Match": new[0].headers["ETag"]})
        assert again.status == 304


async def test_unknown_feed_format_and_method_are_json_errors(app_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = await app_client()
    for path in ("/feeds/all.xml", "/feeds/nope.atom", "/feeds/nope"):
        response = await client.get(path)
        assert response.status == 404 and (await response.json())["error"]["status"] == 404, path
    response = await client.post("/feeds/all.atom")
    assert response.status == 405 and response.headers["Allow"] == "GET,HEAD"
