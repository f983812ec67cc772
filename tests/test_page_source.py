"""Page sources and full_content feeds through the real poll, a local HTTP server and Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from service import keys
from service.config import Settings, SourceConfig, settings_from_dict
from service.models import Article
from service.store.articles import Store
from tests.conftest import DATA, ManualClock
from tests.feedserver import FeedServer
from workers.fetch.client import new_session
from workers.ingest import drain as ingest
from workers.normalise.entry import html_to_text
from workers.poll.pipeline import PollStatus, poll_source
from workers.resources import Resources

PAGES = DATA / "pages"
LISTING = "/rthk/en/world-news.htm"
RTHK = "/rthk/en/component/k2/1720002-20230920.htm"
GENEVA = "/rthk/en/1719999-20230919.htm"
RTHK_SELECTORS = {
    "links": "a.ns2-title",
    "title": ".itemTitle",
    "published": ".createddate",
    "updated": ".lastUpdated",
    "body": ".itemFullText",
    "image": ".itemSlideShow img",
    "caption": ".itemImageCaption",
    "remove": [".itemSocialSharing", ".weatherWidget"],
}
HTML = "text/html; charset=utf-8"


def serve_pages(server: FeedServer) -> str:
    server.set(RTHK, (PAGES / "rthk-article.html").read_bytes(), content_type=HTML, conditional=False)
    server.set(GENEVA, (PAGES / "geneva-article.html").read_bytes(), content_type=HTML, conditional=False)
    return server.set(LISTING, (PAGES / "listing.html").read_bytes(), content_type=HTML)


def make_settings(*sources: dict[str, Any], **fetch: Any) -> Settings:
    return settings_from_dict(
        {
            "fetch": {"allow_private_networks": True, "timeout_seconds": 5, **fetch},
            "sources": list(sources),
            "feeds": [{"name": "all", "title": "All", "sources": [s["id"] for s in sources]}],
        }
    )


@pytest.fixture
async def resources(redis: Redis, clock: ManualClock) -> AsyncIterator[Any]:
    """Build :class:`Resources` for given settings; sessions are closed afterwards."""
    sessions = []

    def build(settings: Settings) -> Resources:
        session = new_session(settings.fetch)
        sessions.append(session)
        return Resources(settings, redis, Store(redis, settings), session, clock)

    yield build
    for session in sessions:
        await session.close()


async def poll(res: Resources, source_id: str, clock: ManualClock):  # type: ignore[no-untyped-def]
    source = res.settings.source(source_id)
    assert source is not None
    report = await poll_source(res, source)
    await ingest.drain(res.redis, res.store, clock, "test")
    return report


async def stored(res: Resources, source_id: str) -> dict[str, Article]:
    return {a.title: a for a in await res.store.source_articles(source_id, 100)}


async def test_page_source_seed_article(resources, feed_server, clock) -> None:  # type: ignore[no-untyped-def]
    listing = serve_pages(feed_server)
    res = resources(
        make_settings(
            {
                "id": "rthk-page",
                "url": listing,
                "kind": "page",
                "timezone": "Asia/Hong_Kong",
                "selectors": RTHK_SELECTORS,
            }
        )
    )
    report = await poll(res, "rthk-page", clock)
    assert (report.status, report.new, report.updated) == (PollStatus.FETCHED, 2, 0)

    articles = await stored(res, "rthk-page")
    seed = articles["Azerbaijan sends troops into Nagorno-Karabakh"]
    assert seed.url == feed_server.url(RTHK)
    assert seed.published == datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
    assert seed.updated == datetime(2023, 9, 20, 1, 10, tzinfo=UTC)
    assert seed.image is not None
    assert seed.image.url == feed_server.url("/assets/images/rthknews/20230920/20230920_011234_AFP.jpg")
    assert seed.image.caption == (
        'Azerbaijan\'s defence ministry said it was using "high precision weapons on the front line and in depth".'
    )
    assert seed.image.credit == "Photo: AFP"
    text = html_to_text(seed.content)
    assert text.startswith("Azerbaijan sent troops backed by artillery strikes")
    assert "Some Armenians gathered in Yerevan" in text
    for noise in ("Share this story", "facebook", "Temperature", "Humidity", "high precision weapons", "Photo: AFP"):
        assert noise not in text, noise
    # The second article is read from its metadata alone (no selector matches its layout).
    geneva = articles["Ceasefire talks planned in Geneva"]
    assert geneva.published == datetime(2023, 9, 19, 14, 40, tzinfo=UTC)
    assert html_to_text(geneva.content).startswith("Diplomats said on Tuesday")

    # Unchanged listing: a 304, no article page fetched again.
    clock.advance(600)
    report = await poll(res, "rthk-page", clock)
    assert report.status is PollStatus.NOT_MODIFIED
    # A changed listing with one more story: only that page is fetched.
    extra = "/rthk/en/component/k2/1720010-20230920.htm"
    feed_server.set(extra, (PAGES / "untitled-undated.html").read_bytes(), content_type=HTML, conditional=False)
    body = (
        (PAGES / "listing.html")
        .read_text()
        .replace('<div class="ns2-page">', f'<div class="ns2-page"><a class="ns2-title" href="{extra}">Ferry fares</a>')
    )
    feed_server.set(LISTING, body, content_type=HTML)
    clock.advance(600)
    report = await poll(res, "rthk-page", clock)
    assert (report.status, report.new) == (PollStatus.FETCHED, 1)
    assert [len(feed_server.seen(p)) for p in (RTHK, GENEVA, extra)] == [1, 1, 1]
    assert await res.redis.zcard(keys.pages_seen("rthk-page")) == 3


async def test_page_source_bounded_per_poll(resources, feed_server, clock) -> None:  # type: ignore[no-untyped-def]
    listing = serve_pages(feed_server)
    res = resources(
        make_settings(
            {"id": "p", "url": listing, "kind": "page", "max_pages_per_poll": 1, "selectors": {"links": "a.ns2-title"}}
        )
    )
    assert (await poll(res, "p", clock)).new == 1
    # Pages were left over, so the listing's validators were not kept: it is read again in full.
    clock.advance(600)
    assert (await poll(res, "p", clock)).new == 1
    assert [r.status for r in feed_server.seen(LISTING)] == [200, 200]
    assert "If-None-Match" not in feed_server.seen(LISTING)[1].headers
    clock.advance(600)
    assert (await poll(res, "p", clock)).status is PollStatus.NOT_MODIFIED
    assert len(await stored(res, "p")) == 2


async def test_bad_article_pages_are_logged_not_fatal(resources, feed_server, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    bad = {
        "/empty.htm": (b"", HTML, 200),
        "/binary.htm": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(range(256)) * 4, HTML, 200),
        "/huge.htm": (b"<html><body>" + b"<p>words words words</p>" * 20_000 + b"</body></html>", HTML, 200),
        "/report.pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf", 200),
        "/gone.htm": (b"gone", HTML, 404),
        "/flaky.htm": (b"try later", HTML, 503),
    }
    for path, (body, content_type, status) in bad.items():
        feed_server.set(path, body, content_type=content_type, status=status, conditional=False)
    feed_server.set(RTHK, (PAGES / "rthk-article.html").read_bytes(), content_type=HTML, conditional=False)
    links = "".join(f'<a class="s" href="{path}">{path}</a>' for path in [*bad, RTHK])
    listing = feed_server.set("/list.htm", f"<html><body>{links}</body></html>", content_type=HTML, conditional=False)
    res = resources(
        make_settings(
            {"id": "p", "url": listing, "kind": "page", "selectors": {"links": "a.s"}}, max_body_bytes=200_000
        )
    )
    with caplog.at_level(logging.WARNING):
        report = await poll(res, "p", clock)
    assert (report.status, report.new) == (PollStatus.FETCHED, 1)
    logged = caplog.text
    for path, reason in [
        ("/empty.htm", "empty page"),
        ("/binary.htm", "binary"),
        ("/huge.htm", "too_large"),
        ("/report.pdf", "not an HTML page"),
        ("/gone.htm", "not_found"),
        ("/flaky.htm", "server"),
    ]:
        assert f"{path} skipped" in logged and reason in logged, (path, reason)
    # Permanent failures are remembered; the transient one is tried again next poll.
    clock.advance(600)
    await poll(res, "p", clock)
    assert {path: len(feed_server.seen(path)) for path in bad} == {
        "/empty.htm": 1,
        "/binary.htm": 1,
        "/huge.htm": 1,
        "/report.pdf": 1,
        "/gone.htm": 1,
        "/flaky.htm": 2,
    }
    assert len(feed_server.seen(RTHK)) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [(b"", HTML, "parse"), (b"\x00\x01\x02\x03" * 64, "application/octet-stream", "parse")],
    ids=["empty-listing", "binary-listing"],
)
async def test_bad_listing_fails_the_source(resources, feed_server, clock, body, content_type, kind) -> None:  # type: ignore[no-untyped-def]
    listing = feed_server.set("/list.htm", body, content_type=content_type)
    res = resources(make_settings({"id": "p", "url": listing, "kind": "page", "selectors": {"links": "a"}}))
    report = await poll(res, "p", clock)
    assert report.status is PollStatus.FAILED and report.error_kind == kind
    assert report.error is not None and report.error.startswith("listing page: ")
    assert (await res.store.sources.get("p")).consecutive_failures == 1


async def test_full_content_feed(resources, feed_server, clock) -> None:  # type: ignore[no-untyped-def]
    feed_server.set(RTHK, (PAGES / "rthk-article.html").read_bytes(), content_type=HTML, conditional=False)
    ferry = "/news/ferry-fares.htm"
    feed_server.set(ferry, (PAGES / "untitled-undated.html").read_bytes(), content_type=HTML, conditional=False)
    rss = (PAGES / "summary-only.rss").read_text()
    url = feed_server.set("/world.rss", rss, content_type="application/rss+xml", conditional=False)
    source = {
        "id": "world",
        "url": url,
        "full_content": True,
        "timezone": "Asia/Hong_Kong",
        "selectors": {key: RTHK_SELECTORS[key] for key in ("published", "updated", "image", "caption", "remove")},
    }
    res = resources(make_settings(source))
    report = await poll(res, "world", clock)
    assert (report.status, report.new) == (PollStatus.FETCHED, 2)

    by_guid = {a.guid: a for a in (await stored(res, "world")).values()}
    seed = by_guid["world-1720002"]
    assert seed.title == "Azerbaijan sends troops into Nagorno-Karabakh"  # the page has one: it wins
    assert seed.summary == "Azerbaijan sent troops into Nagorno-Karabakh."  # the feed's summary stays
    assert seed.updated == datetime(2023, 9, 20, 1, 10, tzinfo=UTC)
    assert seed.image is not None and seed.image.credit == "Photo: AFP"
    text = html_to_text(seed.content)
    assert "Reuters could not verify either side's assertions." in text and "Share this story" not in text
    # A page without title or date keeps the feed's.
    fares = by_guid["world-1720001"]
    assert fares.title == "Harbour ferry fares to rise"
    assert fares.published == datetime(2023, 9, 19, 14, 0, tzinfo=UTC)
    assert html_to_text(fares.content).startswith("Ferry operators will raise fares by five percent")

    # Re-poll of the same feed: nothing fetched, nothing queued, nothing changed.
    clock.advance(600)
    report = await poll(res, "world", clock)
    assert (report.new, report.updated, report.unchanged) == (0, 0, 2)
    assert len(feed_server.seen(RTHK)) == len(feed_server.seen(ferry)) == 1

    # The feed revises one item: only that page is fetched again, and the article keeps its id.
    feed_server.set(
        "/world.rss",
        rss.replace("Fares go up next month.", "Fares go up by 5% next month."),
        content_type="application/rss+xml",
        conditional=False,
    )
    clock.advance(600)
    report = await poll(res, "world", clock)
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    assert (len(feed_server.seen(RTHK)), len(feed_server.seen(ferry))) == (1, 2)
    revised = {a.guid: a for a in (await stored(res, "world")).values()}["world-1720001"]
    assert revised.id == fares.id and revised.summary == "Fares go up by 5% next month."
    assert revised.content and "five percent" in revised.content


async def test_full_content_page_failure_keeps_feed_item(resources, feed_server, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    feed_server.set(RTHK, b"", content_type=HTML, conditional=False)
    rss = (PAGES / "summary-only.rss").read_text()
    url = feed_server.set("/world.rss", rss, content_type="application/rss+xml")
    res = resources(make_settings({"id": "world", "url": url, "full_content": True}))
    with caplog.at_level(logging.WARNING):
        report = await poll(res, "world", clock)
    assert report.new == 2
    by_guid = {a.guid: a for a in (await stored(res, "world")).values()}
    assert by_guid["world-1720002"].content is None
    assert by_guid["world-1720002"].summary == "Azerbaijan sent troops into Nagorno-Karabakh."
    assert "full text of" in caplog.text and "empty page" in caplog.text and "not_found" in caplog.text


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ({"kind": "page"}, "needs selectors.links"),
        ({"kind": "page", "selectors": {"title": "h1"}}, "needs selectors.links"),
        ({"kind": "page", "selectors": {"links": "a[", "title": "h1"}}, "invalid CSS selector"),
        ({"kind": "pages", "selectors": {"links": "a"}}, "kind"),
        ({"selectors": {"links": "a", "unknown": "b"}}, "unknown"),
        ({"max_pages_per_poll": 0}, "max_pages_per_poll"),
    ],
)
def test_page_config_validation(source: dict[str, Any], error: str) -> None:
    from service.errors import ConfigError

    with pytest.raises(ConfigError, match=error):
        settings_from_dict({"sources": [{"id": "p", "url": "https://x.test/", **source}]})


def test_page_config_from_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from service.config import load_settings

    example = tmp_path / "t.toml"
    example.write_text(
        '[[sources]]\nid = "rthk-world"\nurl = "https://news.rthk.hk/rthk/en/world-news.htm"\nkind = "page"\n'
        'timezone = "Asia/Hong_Kong"\n\n[sources.selectors]\nlinks = "a.ns2-title"\nremove = [".itemSocialSharing"]\n\n'
        '[[sources]]\nid = "summaries"\nurl = "https://example.com/feed.xml"\nfull_content = true\n'
    )
    settings = load_settings(example)
    page, feed = settings.sources
    assert isinstance(page, SourceConfig) and page.selectors is not None
    assert (page.kind, page.selectors.links, page.selectors.remove, page.max_pages_per_poll) == (
        "page",
        "a.ns2-title",
        [".itemSocialSharing"],
        20,
    )
    assert (feed.kind, feed.full_content, feed.selectors) == ("feed", True, None)


async def test_article_pages_share_the_host_budget(resources, feed_server, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    """Article pages count against their host's requests/minute like polls: with a budget the
    listing used up, no page is fetched now; they wait for a later poll instead of exceeding it."""
    listing = serve_pages(feed_server)
    res = resources(
        make_settings(
            {"id": "p", "url": listing, "kind": "page", "selectors": {"links": "a.ns2-title"}},
            host_requests_per_minute=2,
        )
    )
    assert (await poll(res, "p", clock)).new == 0
    assert feed_server.seen(RTHK) == [] and feed_server.seen(GENEVA) == []
    assert caplog.text.count("rate_limited, retried next poll") == 2
    state = await res.store.sources.get("p")
    assert state.etag is None  # pages were left over: the listing is read in full next time
