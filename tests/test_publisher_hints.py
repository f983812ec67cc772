"""The pure scheduling rules: publisher hints, Retry-After, backoff, adaptive interval, jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.config import FetchConfig, SourceConfig
from workers.poll import publisher_hints as hints
from workers.poll.next_poll import (
    NextPoll,
    adaptive_interval,
    decide_next_poll,
    interval_bounds,
    jitter_unit,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FETCH = FetchConfig(jitter_fraction=0)
SOURCE = SourceConfig(id="s", url="http://x/", interval_seconds=600, adaptive=False)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"cache-control": "public, max-age=3600"}, 3600),
        ({"cache-control": "s-maxage=100, max-age=200"}, 200),
        ({"cache-control": "no-cache, max-age=3600"}, None),
        ({"cache-control": "max-age=abc"}, None),
        ({"expires": "Wed, 25 Nov 2026 14:00:00 GMT"}, 7200),
        ({"expires": "Wed, 25 Nov 2026 14:00:00 GMT", "date": "Wed, 25 Nov 2026 13:00:00 GMT"}, 3600),
        ({"expires": "0"}, None),
        ({"expires": "Wed, 25 Nov 2026 11:00:00 GMT"}, None),
        ({"cache-control": "max-age=60", "expires": "Wed, 25 Nov 2026 14:00:00 GMT"}, 60),
        ({}, None),
    ],
)
def test_cache_lifetime(headers: dict[str, str], expected: int | None) -> None:
    assert hints.cache_lifetime(headers, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120),
        ("Wed, 25 Nov 2026 13:00:00 GMT", 3600),
        ("Tue, 24 Nov 2026 13:00:00 GMT", None),
        ("soon", None),
        ("-5", None),
        ("²", None),  # a Unicode digit: isdigit() says yes, int() says no
        ("١٢٠", None),
    ],
)
def test_retry_after_seconds_or_http_date(value: str, expected: int | None) -> None:
    assert hints.retry_after({"retry-after": value}, NOW) == expected


def test_feed_interval_ttl_and_syndication_module() -> None:
    assert hints.feed_interval(90, None, None) == 5400
    assert hints.feed_interval(None, "daily", 2) == 43200
    assert hints.feed_interval(None, "hourly", None) == 3600
    assert hints.feed_interval(10, "hourly", 1) == 3600  # the longer request wins
    assert hints.feed_interval(None, "fortnightly", 1) is None
    assert hints.feed_interval(0, None, 0) is None


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_hints_only_lengthen_and_are_capped() -> None:
    assert decide_next_poll(SOURCE, FETCH, NOW).at == at(600)
    assert decide_next_poll(SOURCE, FETCH, NOW, cache_seconds=60).at == at(600)
    decision = decide_next_poll(SOURCE, FETCH, NOW, cache_seconds=3600, feed_seconds=1800)
    assert (decision.at, decision.reason) == (at(3600), "cache")
    assert decide_next_poll(SOURCE, FETCH, NOW, feed_seconds=7200).reason == "feed"
    assert decide_next_poll(SOURCE, FETCH, NOW, cache_seconds=10 * 86400).at == at(86400)
    capped = FetchConfig(jitter_fraction=0, max_interval_seconds=3600)
    assert decide_next_poll(SOURCE, capped, NOW, feed_seconds=86400).at == at(3600)


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    assert decide_next_poll(SOURCE, FETCH, NOW, consecutive_failures=1).at == at(1200)
    assert decide_next_poll(SOURCE, FETCH, NOW, consecutive_failures=3).at == at(4800)
    assert decide_next_poll(SOURCE, FETCH, NOW, consecutive_failures=40).at == at(86400)


def test_retry_after_is_a_floor_and_capped() -> None:
    decision = decide_next_poll(SOURCE, FETCH, NOW, consecutive_failures=1, retry_after_seconds=7200)
    assert (decision.at, decision.reason) == (at(7200), "retry-after")
    assert decide_next_poll(SOURCE, FETCH, NOW, consecutive_failures=1, retry_after_seconds=60).reason == "backoff"
    assert decide_next_poll(SOURCE, FETCH, NOW, retry_after_seconds=30 * 86400).at == at(172800)


def test_adaptive_interval_follows_publishing_frequency() -> None:
    busy = [(NOW - timedelta(minutes=5 * n)).timestamp() for n in range(20)]
    quiet = [(NOW - timedelta(days=3 * n + 1)).timestamp() for n in range(5)]
    assert adaptive_interval(busy, NOW, 120, 86400) == 285  # 95 min over 20 items
    assert adaptive_interval(busy, NOW, 600, 86400) == 600  # the floor
    assert adaptive_interval(quiet, NOW, 300, 86400) == 86400  # the ceiling
    assert adaptive_interval(busy[:1], NOW, 300, 86400) is None
    future = [(NOW + timedelta(days=1)).timestamp()] * 5
    assert adaptive_interval(future, NOW, 300, 86400) is None
    # Silence lengthens the interval: the same items seen a day later.
    assert adaptive_interval(busy, NOW + timedelta(days=1), 60, 86400) > 4000


def test_adaptive_source_uses_its_bounds() -> None:
    source = SourceConfig(
        id="a", url="http://x/", interval_seconds=900, min_interval_seconds=120, max_interval_seconds=7200
    )
    assert interval_bounds(source, FETCH) == (120, 7200)
    assert interval_bounds(SourceConfig(id="b", url="http://x/"), FETCH) == (300, 86400)
    busy = [(NOW - timedelta(minutes=n)).timestamp() for n in range(20)]
    decision = decide_next_poll(source, FETCH, NOW, recent_published=busy)
    assert (decision.at, decision.reason) == (at(120), "adaptive")
    quiet = [(NOW - timedelta(days=n + 1)).timestamp() for n in range(3)]
    # A quiet source is never polled less often than its interval unless the operator opts in.
    assert decide_next_poll(source, FETCH, NOW, recent_published=quiet) == NextPoll(at(900), "interval")
    slowed = source.model_copy(update={"slow_down_quiet": True})
    assert decide_next_poll(slowed, FETCH, NOW, recent_published=quiet) == NextPoll(at(7200), "quiet")
    assert (
        decide_next_poll(
            source, FetchConfig(jitter_fraction=0, slow_down_quiet=True), NOW, recent_published=quiet
        ).reason
        == "quiet"
    )
    assert decide_next_poll(source, FETCH, NOW).at == at(900)  # no dated items: the configured interval


DAY = [(NOW - timedelta(hours=6 * n)).timestamp() for n in range(4)]  # four items over 18 hours


@pytest.mark.parametrize(
    ("source", "fetch", "kwargs", "expected"),
    [
        # interval 60, four items 6 h apart: polled every 60 s, not every 4.5 h (the adaptive mean gap).
        ({"interval_seconds": 60}, {}, {"recent_published": DAY}, (60, "interval")),
        ({"interval_seconds": 60, "slow_down_quiet": True}, {}, {"recent_published": DAY}, (16200, "quiet")),
        ({"interval_seconds": 60}, {"slow_down_quiet": True}, {"recent_published": DAY}, (16200, "quiet")),
        (
            {"interval_seconds": 60, "slow_down_quiet": False},
            {"slow_down_quiet": True},
            {"recent_published": DAY},
            (60, "interval"),
        ),
        (
            {"interval_seconds": 60, "adaptive": False, "slow_down_quiet": True},
            {},
            {"recent_published": DAY},
            (60, "interval"),
        ),
        # Busy sources may still be polled faster than their interval.
        (
            {"interval_seconds": 3600, "min_interval_seconds": 120},
            {},
            {"recent_published": [(NOW - timedelta(minutes=n)).timestamp() for n in range(20)]},
            (120, "adaptive"),
        ),
        # The publisher's hints and backoff still lengthen it.
        ({"interval_seconds": 60}, {}, {"recent_published": DAY, "feed_seconds": 3600}, (3600, "feed")),
        ({"interval_seconds": 60}, {}, {"recent_published": DAY, "cache_seconds": 600}, (600, "cache")),
        ({"interval_seconds": 60}, {}, {"recent_published": DAY, "consecutive_failures": 2}, (240, "backoff")),
        ({"interval_seconds": 60}, {}, {"retry_after_seconds": 900}, (900, "retry-after")),
    ],
)
def test_the_operators_interval_is_honoured(source: dict, fetch: dict, kwargs: dict, expected: tuple[int, str]) -> None:  # type: ignore[type-arg]
    decision = decide_next_poll(
        SourceConfig(id="s", url="http://x/", **source), FetchConfig(jitter_fraction=0, **fetch), NOW, **kwargs
    )
    assert (decision.at, decision.reason) == (at(expected[0]), expected[1])


def test_jitter_spreads_sources_but_never_shortens() -> None:
    fetch = FetchConfig(jitter_fraction=0.1)
    times = {decide_next_poll(SOURCE.model_copy(update={"id": f"s{n}"}), fetch, NOW).at for n in range(50)}
    assert len(times) > 40
    assert all(at(600) <= t < at(660) for t in times)
    assert 0 <= jitter_unit("x", NOW) < 1 and jitter_unit("x", NOW) == jitter_unit("x", NOW)
    ra = decide_next_poll(SOURCE, fetch, NOW, consecutive_failures=1, retry_after_seconds=7200)
    assert ra.at == at(7200)
