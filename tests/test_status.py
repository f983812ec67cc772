"""A source's health and why it waits, in words: the pure rules, table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.config import SourceConfig
from service.models import SourceState
from service.status import Health, ago, explain, health

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SOURCE = SourceConfig(id="s", url="http://x/", interval_seconds=600)
HOUR = timedelta(hours=1)


def days_ago(*days: float) -> list[float]:
    return [(NOW - timedelta(days=d)).timestamp() for d in days]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (SourceState(), Health.NEW),
        (SourceState(last_poll=NOW, last_success=NOW), Health.OK),
        (SourceState(last_poll=NOW, consecutive_failures=1, last_success=NOW - HOUR), Health.FAILING),
        (SourceState(last_poll=NOW, disabled=True, consecutive_failures=50), Health.DISABLED),
        (SourceState(last_poll=NOW, paused=True, consecutive_failures=2), Health.PAUSED),
        # Last success older than 4 intervals (40 min) ...
        (SourceState(last_poll=NOW, last_success=NOW - HOUR), Health.STALE),
        # ... unless the publisher asked for a longer interval.
        (SourceState(last_poll=NOW, last_success=NOW - HOUR, publisher_interval_seconds=3600), Health.OK),
        # A daily publisher silent for a week: far longer than its rhythm.
        (SourceState(last_poll=NOW, last_success=NOW, recent_published=days_ago(7, 8, 9, 10)), Health.STALE),
        # The same publisher a day after its last item: its usual rhythm.
        (SourceState(last_poll=NOW, last_success=NOW, recent_published=days_ago(1, 2, 3, 4)), Health.OK),
        # A publisher of one item a minute, silent for an hour: still within the one-day floor.
        (
            SourceState(
                last_poll=NOW,
                last_success=NOW,
                recent_published=[(NOW - HOUR - timedelta(minutes=n)).timestamp() for n in range(5)],
            ),
            Health.OK,
        ),
    ],
)
def test_health(state: SourceState, expected: Health) -> None:
    assert health(SOURCE, state, NOW) is expected


@pytest.mark.parametrize(
    ("reason", "state", "words"),
    [
        ("interval", SourceState(last_poll=NOW), "its interval_seconds (600 s)"),
        ("backoff", SourceState(last_poll=NOW, consecutive_failures=3), "backing off after 3 failure(s) in a row"),
        ("disabled", SourceState(disabled_reason="HTTP 410 Gone"), "disabled: HTTP 410 Gone"),
        ("quiet", SourceState(), "it publishes rarely: polled slower than its interval (slow_down_quiet)"),
        (None, SourceState(), "not polled yet: due now"),
        ("something-new", SourceState(), "something-new"),
    ],
)
def test_why_it_waits(reason: str | None, state: SourceState, words: str) -> None:
    assert explain(reason, SOURCE, state) == words


def test_ago() -> None:
    assert ago(None, NOW) == "never"
    assert ago(NOW - timedelta(seconds=5), NOW) == "5s ago"
    assert ago(NOW + timedelta(hours=2), NOW) == "2h from now"
    assert ago(NOW - timedelta(days=3), NOW) == "3d ago"
