"""A source's health and why it waits, in words: the pure rules, table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.config import SourceConfig
from service.models import PushStatus, PushSubscription, SourceState
from service.status import Health, ago, explain, health, push_facts, push_marker

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SOURCE = SourceConfig(id="s", url="http://x/", interval_seconds=600)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def pushed(
    last_delivery: datetime | None = None, status: PushStatus = PushStatus.ACTIVE, **fields: object
) -> PushSubscription:
    return PushSubscription.model_validate(
        {
            "status": status,
            "hub": "https://hub.example/",
            "topic": "http://x/",
            "lease_end": NOW + 5 * DAY,
            "last_delivery": last_delivery,
            **fields,
        }
    )


def backup(last_poll: datetime, **fields: object) -> SourceState:
    """The state after a backup poll at ``last_poll`` that scheduled the next one a day later."""
    return SourceState.model_validate(
        {
            "last_poll": last_poll,
            "last_success": last_poll,
            "next_poll": last_poll + DAY,
            "next_poll_reason": "push-backup",
            **fields,
        }
    )


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
        # Pushed by its hub and polled daily as a backup: a backup poll 2 days ago is on rhythm ...
        (backup(NOW - 2 * DAY, push=pushed(NOW - HOUR)), Health.OK),
        # ... even with no delivery lately (judged against the backup interval) ...
        (backup(NOW - 2 * DAY, push=pushed()), Health.OK),
        # ... but not once 4 backup intervals passed with nothing heard.
        (backup(NOW - 5 * DAY, push=pushed(NOW - 5 * DAY)), Health.STALE),
        # A delivery is a sign of life too: a live subscription delivering recently is not stale
        # though the last successful poll is old (polled at the normal interval meanwhile) ...
        (
            SourceState(last_poll=NOW - HOUR, last_success=NOW - HOUR, push=pushed(NOW - timedelta(minutes=5))),
            Health.OK,
        ),
        # ... and without a delivery the usual rule holds.
        (SourceState(last_poll=NOW - HOUR, last_success=NOW - HOUR, push=pushed()), Health.STALE),
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
        (
            "push-backup",
            SourceState(),
            "its publisher's hub pushes new items: polled only as a backup ([push] backup_poll_seconds)",
        ),
    ],
)
def test_why_it_waits(reason: str | None, state: SourceState, words: str) -> None:
    assert explain(reason, SOURCE, state) == words


def test_ago() -> None:
    assert ago(None, NOW) == "never"
    assert ago(NOW - timedelta(seconds=5), NOW) == "5s ago"
    assert ago(NOW + timedelta(hours=2), NOW) == "2h from now"
    assert ago(NOW - timedelta(days=3), NOW) == "3d ago"


def test_push_marker_and_facts() -> None:
    assert push_marker(None, NOW) == "-"
    assert push_marker(pushed(NOW - HOUR), NOW) == "push"
    assert push_marker(pushed(status=PushStatus.PENDING), NOW) == "push pending"
    assert push_marker(pushed(lease_end=NOW - HOUR), NOW) == "push active"  # the lease ran out
    live = dict(push_facts(pushed(NOW - HOUR, deliveries=7, misses=2, last_miss=NOW - DAY), NOW))
    assert live == {
        "hub": "https://hub.example/",
        "state": "active (live)",
        "lease end": "5d from now",
        "last delivery": "1h ago (7 in all)",
        "misses": "2, last 1d ago",
    }
    fallback = pushed(status=PushStatus.FALLBACK, fallback_until=NOW + HOUR, fallback_reason="a pull found 2 new items")
    assert dict(push_facts(fallback, NOW))["state"] == (
        "fallback, polled normally until 1h from now: a pull found 2 new items"
    )
    assert (
        dict(push_facts(pushed(status=PushStatus.DENIED, error="hub said no"), NOW))["state"] == "denied; hub said no"
    )
    assert dict(push_facts(pushed(), NOW))["last delivery"] == "never (0 in all)"
