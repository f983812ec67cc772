"""What a publisher says about when to come back, read from headers and the feed itself.

Pure: headers, feed fields and ``now`` in, seconds out. ``None`` means "no (usable) hint";
garbage, negative or past values are treated as no hint, never as "poll immediately". Header
names are looked up in lower case, as the fetch folds them
(:func:`workers.fetch.client.folded_headers`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from workers.parse.types import ParsedFeed

_MAX_AGE = re.compile(r"(?:^|[,\s])(s-maxage|max-age)\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)

SY_PERIOD_SECONDS = {
    "hourly": 3600,
    "daily": 86400,
    "weekly": 7 * 86400,
    "monthly": 30 * 86400,
    "yearly": 365 * 86400,
}


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def cache_lifetime(headers: Mapping[str, str], now: datetime) -> int | None:
    """Seconds the response stays fresh: ``Cache-Control: max-age`` beats ``Expires``."""
    control = headers.get("cache-control") or ""
    if _NO_CACHE.search(control):
        return None
    ages = {name.lower(): int(seconds) for name, seconds in _MAX_AGE.findall(control)}
    if "max-age" in ages or "s-maxage" in ages:
        return ages.get("max-age", ages.get("s-maxage"))
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    # Relative to the server's own Date when it sent one: clocks differ, intervals do not.
    base = _http_date(headers.get("date")) or now
    seconds = int((expires - base).total_seconds())
    return seconds if seconds > 0 else None


def retry_after(headers: Mapping[str, str], now: datetime) -> int | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too, and int("²") raises
        return int(value)
    when = _http_date(value)
    if when is None:
        return None
    seconds = int((when - now).total_seconds())
    return seconds if seconds > 0 else None


def feed_interval(ttl_minutes: int | None, sy_period: str | None, sy_frequency: int | None) -> int | None:
    """The interval the feed document asks for: RSS ``<ttl>`` or ``sy:updatePeriod``/``Frequency``."""
    candidates = []
    if ttl_minutes and ttl_minutes > 0:
        candidates.append(ttl_minutes * 60)
    period = SY_PERIOD_SECONDS.get((sy_period or "").strip().lower())
    if period is not None:
        frequency = sy_frequency if sy_frequency and sy_frequency > 0 else 1
        candidates.append(period // frequency)
    return max(candidates) if candidates else None


@dataclass(frozen=True)
class FeedHints:
    """What a feed document says about its pace, kept in the state for the 304s that follow."""

    interval_seconds: int | None
    """RSS ``<ttl>`` or ``sy:updatePeriod``/``sy:updateFrequency``."""
    recent_published: tuple[float, ...]
    """Unix times of the newest dated entries (at most the adaptive window), oldest first."""


def feed_hints(parsed: ParsedFeed, window: int) -> FeedHints:
    dated = [entry.published or entry.updated for entry in parsed.entries] + [known.date for known in parsed.known]
    times = sorted(when.timestamp() for when in dated if when is not None)
    return FeedHints(
        feed_interval(parsed.ttl_minutes, parsed.update_period, parsed.update_frequency), tuple(times[-window:])
    )
