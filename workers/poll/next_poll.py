"""When to poll a source next: a pure function of what the last poll saw and the time.

The order of the rules (docs/publishers.md):

1. the base interval: ``[push] backup_poll_seconds`` while the publisher's hub is expected to
   push the source's new items (an active WebSub subscription: the pull is only a backup);
   else the configured ``interval_seconds``. An adaptive source with dated items may be polled
   *faster* when it publishes often (down to its ``min_interval``); it is polled *slower* than
   ``interval_seconds`` only with ``slow_down_quiet`` (the source's, else ``[fetch]``), up to its
   ``max_interval``: the interval an operator set is a promise;
2. the publisher's hints (``Cache-Control: max-age``, ``Expires``, RSS ``<ttl>``,
   ``sy:updatePeriod``) can only lengthen it, capped at ``[fetch] max_interval_seconds``;
3. failures back off exponentially, capped at ``[fetch] max_backoff_seconds``;
4. jitter adds up to ``[fetch] jitter_fraction`` so sources drift out of lockstep;
5. a ``Retry-After`` (capped at ``[fetch] retry_after_max_seconds``) is a floor nothing shortens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.config import FetchConfig, SourceConfig

DEFAULT_MIN_INTERVAL = 300


# Not frozen: built for every poll, and a frozen dataclass's __init__ costs about three
# times a plain one's.
@dataclass(slots=True)
class NextPoll:
    at: datetime
    reason: str
    """Which rule decided: interval, adaptive (busy: faster), quiet (slower, opt-in), push-backup,
    cache, feed, backoff, retry-after."""


def interval_bounds(source: SourceConfig, fetch: FetchConfig) -> tuple[int, int]:
    ceiling = source.max_interval_seconds or fetch.max_interval_seconds
    floor = source.min_interval_seconds or min(source.interval_seconds, DEFAULT_MIN_INTERVAL)
    return min(floor, ceiling), ceiling


def adaptive_interval(
    published: Sequence[float], now: datetime, floor: int, ceiling: int, window: int = 20
) -> int | None:
    """Seconds between polls from the mean gap between the newest ``window`` items up to now.

    Measuring up to *now* (not up to the newest item) lets the interval grow while a source is
    silent. Future-dated items are ignored; fewer than two dated items give no opinion.
    """
    now_ts = now.timestamp()
    times = sorted(t for t in published if t <= now_ts)[-window:]
    if len(times) < 2:
        return None
    mean_gap = (now_ts - times[0]) / len(times)
    return int(min(max(mean_gap, floor), ceiling))


def jitter_unit(source_id: str, now: datetime) -> float:
    """A number in [0, 1) that differs between sources and polls but is reproducible."""
    digest = hashlib.blake2b(f"{source_id}@{now.timestamp()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def decide_next_poll(
    source: SourceConfig,
    fetch: FetchConfig,
    now: datetime,
    *,
    consecutive_failures: int = 0,
    cache_seconds: int | None = None,
    feed_seconds: int | None = None,
    retry_after_seconds: int | None = None,
    recent_published: Sequence[float] = (),
    push_backup_seconds: int | None = None,
) -> NextPoll:
    interval: float = source.interval_seconds
    reason = "interval"
    if push_backup_seconds is not None:
        interval, reason = push_backup_seconds, "push-backup"
    elif source.adaptive:
        floor, ceiling = interval_bounds(source, fetch)
        adaptive = adaptive_interval(recent_published, now, floor, ceiling, fetch.adaptive_window_items)
        slow_down = fetch.slow_down_quiet if source.slow_down_quiet is None else source.slow_down_quiet
        if adaptive is not None and adaptive < interval:
            interval, reason = adaptive, "adaptive"
        elif adaptive is not None and adaptive > interval and slow_down:
            interval, reason = adaptive, "quiet"
    for hint, name in ((cache_seconds, "cache"), (feed_seconds, "feed")):
        if hint is not None and min(hint, fetch.max_interval_seconds) > interval:
            interval, reason = min(hint, fetch.max_interval_seconds), name
    if consecutive_failures:
        backed_off = min(interval * 2 ** min(consecutive_failures, 20), max(fetch.max_backoff_seconds, interval))
        if backed_off > interval:
            interval, reason = backed_off, "backoff"
    if fetch.jitter_fraction:  # (no hash to compute for a factor of 1)
        interval *= 1 + fetch.jitter_fraction * jitter_unit(source.id, now)
    if retry_after_seconds is not None and min(retry_after_seconds, fetch.retry_after_max_seconds) >= interval:
        interval, reason = min(retry_after_seconds, fetch.retry_after_max_seconds), "retry-after"
    return NextPoll(now + timedelta(seconds=interval), reason)
