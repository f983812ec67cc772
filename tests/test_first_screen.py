"""What ``tributary run`` prints first: the banner, and the one line after the first round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.config import settings_from_dict
from service.models import SourceState
from tributary.first_screen import banner, local_url, round_done, round_summary

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def ok() -> SourceState:
    return SourceState(last_poll=T0 + timedelta(seconds=5), last_success=T0 + timedelta(seconds=5))


def failing(kind: str) -> SourceState:
    return SourceState(last_poll=T0 + timedelta(seconds=5), consecutive_failures=1, last_error_kind=kind)


@pytest.mark.parametrize(
    ("states", "line"),
    [
        ({"a": ok(), "b": ok()}, "2 sources: 2 ok"),
        (
            {"a": ok(), "b": ok(), "c": ok(), "d": ok(), "e": failing("dns"), "f": failing("dns")},
            "6 sources: 4 ok, 2 failing (dns): e, f; see /admin or `.venv/bin/tributary sources --failing`",
        ),
        (
            {"a": failing("dns"), "b": failing("timeout"), "c": failing("dns"), "d": None},
            "4 sources: 0 ok, 3 failing (dns: 2, timeout: 1), 1 not polled yet: a, b, c; "
            "see /admin or `.venv/bin/tributary sources --failing`",
        ),
        (
            {"a": ok(), "gone": SourceState(last_poll=T0, disabled=True, consecutive_failures=1)},
            "2 sources: 1 ok, 1 disabled: gone; see /admin or `.venv/bin/tributary sources --failing`",
        ),
        ({"only": ok()}, "1 source: 1 ok"),
    ],
)
def test_round_summary(states: dict[str, SourceState | None], line: str) -> None:
    assert round_summary(states) == line


def test_many_failing_sources_are_not_all_named() -> None:
    states: dict[str, SourceState | None] = {f"s{n}": failing("http_5xx") for n in range(8)}
    assert round_summary(states).endswith(
        "s0, s1, s2, s3, s4 and 3 more; see /admin or `.venv/bin/tributary sources --failing`"
    )


def test_the_round_is_done_when_every_source_was_polled_or_waits() -> None:
    now = T0 + timedelta(seconds=10)
    waiting = SourceState(last_poll=T0 - timedelta(hours=1), next_poll=T0 + timedelta(minutes=5))
    stale_due = SourceState(last_poll=T0 - timedelta(hours=1), next_poll=T0 - timedelta(minutes=1))
    assert round_done({"a": ok(), "b": waiting}, T0, now)
    assert not round_done({"a": ok(), "b": stale_due}, T0, now)
    assert not round_done({"a": ok(), "b": None}, T0, now)


def test_banner(tmp_path: Path) -> None:
    settings = settings_from_dict(
        {
            "server": {"host": "0.0.0.0", "port": 9000},
            "storage": {"data_dir": str(tmp_path / "data")},
            "worker": {"processes": 2},
            "sources": [{"id": "a", "url": "https://a.example/feed"}, {"id": "b", "url": "https://b.example/feed"}],
            "feeds": [{"name": "all", "title": "All", "sources": ["a", "b"]}],
        }
    )
    lines = banner(settings, tmp_path / "t.toml", "redis://:pw@db:6379/0", "")
    assert lines[0].startswith("Tributary ")
    assert lines[1:] == [
        f"  config    {tmp_path / 't.toml'}",
        f"  data dir  {tmp_path / 'data'}",
        "  redis     redis://:***@db:6379/0",
        "  sources   2 sources, 1 merged feed",
        "  open      http://127.0.0.1:9000/",
        "  workers   2 processes, 50 jobs each; readiness at http://127.0.0.1:9000/readyz",
    ]
    assert local_url(settings_from_dict({"server": {"host": "::1", "port": 8080}})) == "http://[::1]:8080/"
