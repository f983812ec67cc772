"""workers.parse.newest: a long feed is read newest first, up to the cap, in document order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from workers.parse import parse_feed
from workers.parse.newest import newest

T = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return T + timedelta(days=n)


@pytest.mark.parametrize(
    ("dates", "cap", "kept"),
    [
        ([day(3), day(2), day(1)], None, [0, 1, 2]),
        ([day(3), day(2), day(1)], 3, [0, 1, 2]),
        ([day(3), day(2), day(1)], 2, [0, 1]),
        ([day(1), day(2), day(3)], 2, [1, 2]),  # oldest first in the document: still the newest kept
        ([day(1), None, day(3), None], 2, [0, 2]),  # undated rank after dated ones
        ([None, None, None], 2, [0, 1]),  # no dates at all: document order (feeds list newest first)
        ([day(1), day(1), day(1)], 2, [0, 1]),  # ties by document order
    ],
)
def test_newest(dates: list[datetime | None], cap: int | None, kept: list[int]) -> None:
    assert newest(dates, lambda d: d, cap) == kept


def test_dates_are_only_read_over_the_cap() -> None:
    def boom(_: object) -> datetime:
        raise AssertionError("read a date under the cap")

    assert newest([1, 2], boom, 2) == [0, 1]


def _rss(n: int) -> bytes:
    def stamp(i: int) -> str:
        return day(i % 7 * 10 + i // 7).strftime("%a, %d %b %Y %H:%M:%S +0000")

    items = "".join(f"<item><guid>g{i}</guid><title>t{i}</title><pubDate>{stamp(i)}</pubDate></item>" for i in range(n))
    return f"<rss version='2.0'><channel><title>T</title>{items}</channel></rss>".encode()


def _json(n: int) -> bytes:
    items = [
        {"id": f"g{i}", "title": f"t{i}", "date_published": day(i % 7 * 10 + i // 7).isoformat()} for i in range(n)
    ]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": items}).encode()


@pytest.mark.parametrize("body", [_rss(70), _json(70)], ids=["rss", "json"])
def test_parse_reads_only_the_newest(body: bytes) -> None:
    feed = parse_feed(body, source_id="s", url="https://example.com/f", content_type=None, max_entries=10)
    everything = parse_feed(body, source_id="s", url="https://example.com/f", content_type=None)
    newest_ten = sorted(everything.entries, key=lambda e: e.published or T, reverse=True)[:10]
    assert {e.guid for e in feed.entries} == {e.guid for e in newest_ten}
    order = [e.guid for e in everything.entries]
    assert [e.guid for e in feed.entries] == sorted((e.guid for e in feed.entries), key=order.index)
    assert feed.skipped == 60 and everything.skipped == 0
