"""Full text for summary-only feeds: which dates an item keeps once its page is read. Pure.

The fixture feed tests/data/pages/full-text-dates.rss meets real pages of tests/data/pages;
full-text-dates.json beside it says what each item must end up with. The poll that fetches
those pages is tested end to end in tests/test_page_source.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.config import PageSelectors, Settings, SourceConfig
from tests.conftest import DATA
from workers.extract import DateSource, ExtractedPage, extract_page
from workers.normalise.entry import normalise_feed
from workers.pages.full_text import merge, merged_dates
from workers.parse import parse_feed
from workers.parse.types import ParsedEntry

PAGES = DATA / "pages"
EXPECTED = json.loads((PAGES / "full-text-dates.json").read_text(encoding="utf-8"))


def test_every_item_of_the_fixture_states_what_it_expects() -> None:
    feed = parse_feed(
        (PAGES / "full-text-dates.rss").read_bytes(), source_id="s", url=EXPECTED["feed_url"], content_type=None
    )
    assert [entry.guid for entry in feed.entries] == list(EXPECTED["items"])


@pytest.mark.parametrize("guid", list(EXPECTED["items"]))
def test_full_text_dates(guid: str) -> None:
    case = EXPECTED["items"][guid]
    selectors = PageSelectors(**case["selectors"]) if case["selectors"] else None
    source = SourceConfig(
        id="dates", url=EXPECTED["feed_url"], full_content=True, timezone=EXPECTED["timezone"], selectors=selectors
    )
    now = datetime.fromisoformat(EXPECTED["now"])
    feed = parse_feed(
        (PAGES / "full-text-dates.rss").read_bytes(),
        source_id=source.id,
        url=source.url,
        content_type="application/rss+xml",
        default_tz=source.zone,
    )
    articles, _ = normalise_feed(feed, source=source, now=now)
    [article] = [a for a in articles if a.guid == guid]
    assert article.url is not None
    page = extract_page((PAGES / case["page"]).read_bytes(), article.url, selectors, source.zone)

    merged = merge(article, page, source, now, settings=Settings(sources=[source]))

    got = {"published": merged.published, "updated": merged.updated, "flags": sorted(merged.flags)}
    assert got == {
        "published": datetime.fromisoformat(case["published"]),
        "updated": datetime.fromisoformat(case["updated"]),
        "flags": case["flags"],
    }
    assert merged.id == article.id  # identity never moves


T = datetime(2023, 9, 19, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def page(published: datetime | None, source: DateSource, updated: datetime | None = None) -> ExtractedPage:
    return ExtractedPage(ParsedEntry(published=published, updated=updated), source)


@pytest.mark.parametrize(
    ("feed_published", "feed_updated", "extracted", "dates"),
    [
        # published: the page's statement, else the feed's, else the page's guess
        (T, None, page(T - H, DateSource.SELECTOR), (T - H, None)),
        (T, None, page(T - H, DateSource.METADATA), (T - H, None)),
        (T, None, page(T - H, DateSource.GUESS), (T, None)),
        (None, None, page(T - H, DateSource.GUESS), (T - H, None)),
        (None, None, page(None, DateSource.NONE), (None, None)),
        # updated: the later of the two "last updated"
        (T, T + H, page(None, DateSource.NONE, T + 8 * H), (T, T + 8 * H)),
        (T, T + 8 * H, page(None, DateSource.NONE, T + H), (T, T + 8 * H)),
        (T, None, page(None, DateSource.NONE, T + H), (T, T + H)),
        (T, T + H, page(None, DateSource.NONE), (T, T + H)),
    ],
)
def test_merged_dates(
    feed_published: datetime | None,
    feed_updated: datetime | None,
    extracted: ExtractedPage,
    dates: tuple[Any, Any],
) -> None:
    assert merged_dates(feed_published, feed_updated, extracted) == dates
