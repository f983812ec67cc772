"""Date rules of the article schema: zone-less dates in the source's zone, future dates clamped
to first-seen and flagged, ``updated`` never before ``published``. Table-driven."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.config import SourceConfig
from service.models import Article, ArticleFlag
from service.store.upsert import decide_upsert
from workers.normalise.entry import normalise_entry, normalise_feed
from workers.parse import parse_feed
from workers.parse.types import ParsedEntry, ParsedFeed

NOW = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)
SOURCE = SourceConfig(id="hk", url="https://hk.example/rss", timezone="Asia/Hong_Kong")
T = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
CLAMPED = ArticleFlag.DATE_CLAMPED


def norm(now: datetime = NOW, **fields: Any) -> Article:
    return normalise_entry(ParsedEntry(guid="g", title="t", **fields), source=SOURCE, feed=ParsedFeed(), now=now)


@pytest.mark.parametrize(
    ("published", "updated", "expected_published", "expected_updated", "clamped"),
    [
        (T, T + timedelta(hours=1), T, T + timedelta(hours=1), False),
        (
            NOW + timedelta(hours=23),
            None,
            NOW + timedelta(hours=23),
            NOW + timedelta(hours=23),
            False,
        ),  # within a day: kept
        (NOW + timedelta(days=1, seconds=1), None, NOW, NOW, True),
        (NOW + timedelta(days=400), None, NOW, NOW, True),
        (T, NOW + timedelta(days=3), T, NOW, True),  # only updated in the future
        (NOW + timedelta(days=3), T, NOW, NOW, True),  # published clamped; updated raised to it
        (T + timedelta(hours=2), T, T + timedelta(hours=2), T + timedelta(hours=2), False),  # updated < published
    ],
)
def test_future_dates_are_clamped_and_updated_never_precedes_published(
    published: datetime,
    updated: datetime | None,
    expected_published: datetime,
    expected_updated: datetime,
    clamped: bool,
) -> None:
    article = norm(published=published, updated=updated)
    assert (article.published, article.updated, CLAMPED in article.flags) == (
        expected_published,
        expected_updated,
        clamped,
    )
    assert article.updated >= article.published


def test_clamped_article_keeps_its_id_and_first_published_across_polls() -> None:
    future = NOW + timedelta(days=30)
    first = norm(published=future, summary="<p>a</p>")
    later = norm(now=NOW + timedelta(hours=5), published=future, summary="<p>b</p>")
    assert first.id == later.id
    outcome, stored = decide_upsert(first, later, NOW + timedelta(hours=5))
    assert outcome.value == "updated" and stored.published == NOW  # the first-seen time stays


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>HK</title><link>https://hk.example/</link>
<item><guid>1</guid><title>zone-less RFC 822</title><pubDate>Wed, 20 Sep 2023 01:12:00</pubDate></item>
<item><guid>2</guid><title>zone-less ISO</title><pubDate>2023-09-20T01:12:00</pubDate></item>
<item><guid>3</guid><title>named zone</title><pubDate>Wed, 20 Sep 2023 01:12:00 SGT</pubDate></item>
<item><guid>4</guid><title>page format</title><pubDate>2023-09-20 HKT 01:12</pubDate></item>
<item><guid>5</guid><title>offset</title><pubDate>Wed, 20 Sep 2023 02:12:00 +0900</pubDate></item>
<item><guid>6</guid><title>named CEST</title><pubDate>Tue, 19 Sep 2023 19:12:00 CEST</pubDate></item>
<item><guid>7</guid><title>named AEST</title><pubDate>Wed, 20 Sep 2023 03:12:00 AEST</pubDate></item>
<item><guid>8</guid><title>named BST</title><pubDate>Tue, 19 Sep 2023 18:12:00 BST</pubDate></item>
<item><guid>9</guid><title>named IST</title><pubDate>Tue, 19 Sep 2023 22:42:00 IST</pubDate></item>
<item><guid>10</guid><title>named JST</title><pubDate>Wed, 20 Sep 2023 02:12:00 JST</pubDate></item>
</channel></rss>"""


@pytest.mark.parametrize(
    ("zone", "expected"),
    [("Asia/Hong_Kong", T), ("UTC", T + timedelta(hours=8)), ("Europe/London", T + timedelta(hours=7))],
)
def test_zone_less_dates_use_the_source_timezone_named_zones_do_not(zone: str, expected: datetime) -> None:
    source = SOURCE.model_copy(update={"timezone": zone})
    feed = parse_feed(
        RSS.encode(), source_id="hk", url=source.url, content_type="application/rss+xml", default_tz=source.zone
    )
    articles, warnings = normalise_feed(feed, source=source, now=NOW)
    assert warnings == []
    published = {a.title: a.published for a in articles}
    assert published.pop("zone-less RFC 822") == published.pop("zone-less ISO") == expected
    assert published == dict.fromkeys(published, T), published  # stated zones ignore the source's
    assert all(a.published.tzinfo is UTC for a in articles)


def test_flags_are_written_in_one_order_whichever_process_writes_them() -> None:
    """A set's order follows string hashing, salted per process: the stored JSON sorts it."""
    article = norm(published=NOW + timedelta(days=3)).model_copy(update={"flags": frozenset(ArticleFlag)})
    written = article.model_dump_json()
    assert json.loads(written)["flags"] == sorted(flag.value for flag in ArticleFlag)
    assert Article.model_validate_json(written) == article
