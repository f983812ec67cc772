"""When to poll a source next: a pure function of what the last poll saw and the time."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.config import SourceConfig

MAX_BACKOFF = timedelta(hours=24)


def next_poll_at(source: SourceConfig, now: datetime, *, consecutive_failures: int = 0) -> datetime:
    """The configured interval, doubled per consecutive failure up to ``MAX_BACKOFF``."""
    interval = timedelta(seconds=source.interval_seconds)
    if consecutive_failures:
        interval = min(interval * 2 ** min(consecutive_failures, 16), max(MAX_BACKOFF, interval))
    return now + interval
