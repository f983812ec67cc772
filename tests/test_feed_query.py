"""Pure parts of serving: query normalisation, cursors, filters, content negotiation."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

import pytest

from service.config import FeedConfig, settings_from_dict
from service.feed_filter import feed_filter_matches
from service.feeds.query import Cursor, QueryError, parse_query
from service.models import Article
from service.web.negotiate import choose_coding, negotiate_format

FEED = FeedConfig(name="all", title="All", limit=20)


def test_equivalent_queries_normalise_to_one_key() -> None:
    a = parse_query([("q", "  Hong   KONG "), ("tag", "B"), ("tag", "a"), ("x", "1"), ("limit", "20")], FEED)
    b = parse_query({"tag": "a", "q": "hong kong"}, FEED)
    c = parse_query([("tag", "b"), ("tag", "A"), ("q", "hong kong")], FEED)
    assert a.key == c.key == "?tag=a&tag=b&q=hong+kong"  # limit equal to the default is dropped
    assert b.key == "?tag=a&q=hong+kong"
    assert parse_query([], FEED).key == ""


@pytest.mark.parametrize("limit", ["²", "١٢", "１２", "12\u0663", "0", "1001", "-1", "+5", " 5", "5.0", ""])
def test_limit_takes_ascii_digits_only(limit: str) -> None:
    with pytest.raises(QueryError, match="limit"):
        parse_query([("limit", limit)], FEED)


@pytest.mark.parametrize("score", [0.0, 1695143520.0, 1695143520.123456, 1e-7, -86400.5])
def test_cursor_round_trips_exactly(score: float) -> None:
    cursor = Cursor(score, "0123456789abcdef0123456789abcdef")
    token = cursor.encode()
    assert "=" not in token and "/" not in token and "+" not in token
    assert Cursor.decode(token) == cursor


@pytest.mark.parametrize(
    "token", ["", "@@@", "bm9wZQ", Cursor(1.0, "x" * 32).encode(), "bmFuOjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"]
)
def test_foreign_cursors_are_refused(token: str) -> None:
    with pytest.raises(QueryError, match="cursor"):
        Cursor.decode(token)


def _article(**fields: object) -> Article:
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    return Article(
        **({"id": "0" * 32, "source_id": "s", "title": "t", "published": t, "updated": t, "first_seen": t} | fields)
    )


@pytest.mark.parametrize(
    ("toml_value", "kept"),
    [
        ("2026-01-01", True),
        ("2026-01-02", False),
        ("2026-01-01T12:00:00", True),
        ("2026-01-01T13:00:01+02:00", True),
        ("2026-01-01T12:00:01Z", False),
    ],
)
def test_min_date_in_any_toml_spelling(toml_value: str, kept: bool) -> None:
    data = tomllib.loads(f'[[feeds]]\nname="a"\ntitle="A"\nmin_date={toml_value}\n')
    feed = settings_from_dict(data).feeds[0]
    assert feed_filter_matches(feed, _article()) is kept


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [
        (None, "atom"),
        ("", "atom"),
        ("text/html", "html"),
        ("application/rss+xml;q=0.5, application/atom+xml;q=0.5", "rss"),  # tie: header order
        ("*/*;q=0.9, application/feed+json;q=0.9", "json"),  # tie: the specific range wins
        ("text/*", "html"),
        ("application/atom+xml;q=0, */*", "atom"),
        ("application/json;q=bogus, application/rss+xml", "rss"),
    ],
)
def test_negotiate_format(accept: str | None, fmt: str) -> None:
    assert negotiate_format(accept) == fmt


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, None),
        ("", None),
        ("br", "br"),
        ("gzip, br", "br"),
        ("GZIP", "gzip"),
        ("*;q=0", None),
        ("br;q=0.1, gzip;q=0.2", "gzip"),
        ("identity;q=0.5, gzip;q=0.4", None),
        ("compress, deflate", None),
    ],
)
def test_choose_coding(header: str | None, coding: str | None) -> None:
    assert choose_coding(header) == coding
