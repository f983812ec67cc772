"""Faults: the smaller holes, one hostile input each, through the real stages that met it.

- a comment before the DOCTYPE hid an entity declaration from the check;
- ``javascript:`` enclosure URLs reached RSS, Atom and JSON Feed;
- ``?limit=²`` was a 500 (a Unicode digit passes ``str.isdigit``);
- year ``0001`` became 2001, ``-0001`` lost its sign, ``+9999`` offsets were accepted and Feb 30
  rolled over to Mar 1;
- a source URL ``http://[::1/feed`` passed config validation, then failed every lease period
  with a traceback, never counted toward disabling.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import feedparser
import pytest

from service.config import settings_from_dict
from service.errors import ConfigError, ErrorKind, ParseError
from service.feeds.merge import build_merged_feed
from service.feeds.render import render
from service.models import Article, ArticleFlag
from service.web.app import create_app
from tests.feedserver import FeedServer
from tests.pollkit import TEST_FETCH, poll_settings, resources
from workers.ingest import drain as ingest
from workers.normalise.entry import normalise_feed
from workers.parse import parse_feed
from workers.poll.pipeline import PollStatus, poll_source

URL = "https://hostile.example/feed"
NOW = datetime(2026, 11, 25, tzinfo=UTC)
SETTINGS = settings_from_dict(
    {
        "sources": [{"id": "h", "url": URL}],
        "feeds": [{"name": "all", "title": "All", "sources": ["h"]}],
    }
)


def pipeline(body: bytes, content_type: str = "application/xml") -> list[Article]:
    feed = parse_feed(body, source_id="h", url=URL, content_type=content_type)
    articles, _ = normalise_feed(feed, source=SETTINGS.sources[0], now=NOW)
    return articles


def test_a_comment_before_the_doctype_hides_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        b"<?xml version='1.0'?><!-- <a href='x'> -->"
        b'<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<rss version='2.0'><channel><title>&b;</title></channel></rss>"
    )
    monkeypatch.setattr(feedparser, "parse", lambda *a, **k: pytest.fail("feedparser saw a DTD subset"))
    with pytest.raises(ParseError, match="entity declarations are refused"):
        parse_feed(body, source_id="h", url=URL, content_type="application/rss+xml")


def test_javascript_enclosures_reach_no_format() -> None:
    rss = (
        b"<rss version='2.0'><channel><title>T</title><item><guid>g</guid><title>x</title>"
        b"<enclosure url='javascript:alert(document.cookie)' type='audio/mpeg' length='1'/>"
        b"<enclosure url='https://cdn.hostile.example/ok.mp3' type='audio/mpeg' length='1'/>"
        b"</item></channel></rss>"
    )
    jsonfeed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "j", "title": "x", "attachments": [{"url": "JavaScript:alert(1)", "mime_type": "a/b"}]}],
        }
    ).encode()
    articles = pipeline(rss) + pipeline(jsonfeed, "application/feed+json")
    assert [e.url for a in articles for e in a.enclosures] == ["https://cdn.hostile.example/ok.mp3"]
    merged = build_merged_feed(SETTINGS, SETTINGS.feeds[0], articles)
    for fmt in ("rss", "atom", "json"):
        body = render(merged, fmt)
        assert b"javascript" not in body.lower() and b"ok.mp3" in body
        json.loads(body) if fmt == "json" else ET.fromstring(body)


@pytest.mark.parametrize("limit", ["²", "³", "١٢", "１２", "߂"])
async def test_unicode_digits_in_limit_are_a_400(redis, aiohttp_client, limit: str) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(SETTINGS, redis=redis))
    response = await client.get("/feeds/all.rss", params={"limit": limit})
    assert response.status == 400 and "limit" in await response.text()


@pytest.mark.parametrize(
    "date",
    [
        "Mon, 01 Jan 0001 00:00:00 GMT",  # was 2001
        "-0001-01-01T00:00:00Z",  # lost its sign
        "Mon, 01 Jan 2024 00:00:00 +9999",  # was accepted
        "2024-02-30T00:00:00Z",  # rolled over to Mar 1
        "Fri, 30 Feb 2024 10:00:00 GMT",
    ],
)
def test_impossible_dates_are_refused_and_flagged(date: str) -> None:
    body = (
        "<rss version='2.0' xmlns:dc='http://purl.org/dc/elements/1.1/'><channel><title>T</title>"
        f"<item><guid>g</guid><title>x</title><pubDate>{date}</pubDate><dc:date>{date}</dc:date></item>"
        "</channel></rss>"
    ).encode()
    (article,) = pipeline(body)
    assert article.published == NOW  # first seen, not an invented date
    assert ArticleFlag.PUBLISHED_MISSING in article.flags


def test_a_broken_source_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sources\.0\.url: .*Invalid IPv6 URL"):
        poll_settings([{"id": "x", "url": "http://[::1/feed"}])


async def test_a_redirect_to_a_broken_url_is_a_counted_failure(redis, clock, feed_server: FeedServer, caplog) -> None:  # type: ignore[no-untyped-def]
    url = feed_server.set("/moved", b"", status=301, headers={"Location": "http://[::1/feed"})
    config = poll_settings([{"id": "m", "url": url}], max_consecutive_failures=2)
    res = resources(config, redis, clock)
    try:
        with caplog.at_level(logging.WARNING):
            first = await poll_source(res, config.sources[0])
            clock.advance(3600)
            await poll_source(res, config.sources[0])
    finally:
        await res.session.close()
    assert first.status is PollStatus.FAILED and first.error_kind is ErrorKind.BAD_URL
    state = await res.store.sources.get("m")
    assert state.last_error_kind == "bad_url" and state.consecutive_failures == 2
    assert state.disabled  # counted toward disabling, like any failure
    assert not any(record.exc_info for record in caplog.records)  # no traceback


async def test_a_good_poll_of_the_same_server_still_works(redis, clock, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    # The guard rails above cost nothing for an ordinary feed.
    url = feed_server.set(
        "/ok.rss",
        b"<rss version='2.0'><channel><title>T</title><item><guid>g</guid><title>x</title></item></channel></rss>",
    )
    config = settings_from_dict({"fetch": TEST_FETCH, "sources": [{"id": "ok", "url": url}]})
    res = resources(config, redis, clock)
    try:
        report = await poll_source(res, config.sources[0])
        await ingest.drain(redis, res.store, clock, "c")
    finally:
        await res.session.close()
    assert report.status is PollStatus.FETCHED and await res.store.article_count("ok") == 1
