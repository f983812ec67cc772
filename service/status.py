"""How a source is doing and why it waits, in words an operator reads. Pure: data and ``now`` in.

Health, worst first:

- ``disabled``: off the schedule after a 410 or too many failures (``tributary enable``);
- ``paused``: an operator paused it (``tributary sources resume``);
- ``failing``: its last poll failed;
- ``stale``: it answers, but no new article for far longer than its own rhythm
  (:data:`RHYTHM_FACTOR` times the mean gap between its newest items, at least
  :data:`RHYTHM_FLOOR_SECONDS`), or its last success is older than :data:`STALE_INTERVALS`
  intervals;
- ``new``: never polled yet; ``ok``: the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from service.config import SourceConfig
from service.models import SourceState

STALE_INTERVALS = 4
RHYTHM_FACTOR = 5
RHYTHM_FLOOR_SECONDS = 86400
MIN_RHYTHM_ITEMS = 3


class Health(StrEnum):
    DISABLED = "disabled"
    PAUSED = "paused"
    FAILING = "failing"
    STALE = "stale"
    NEW = "new"
    OK = "ok"


def rhythm_seconds(published: Sequence[float]) -> float | None:
    """The mean gap between the newest items (None with fewer than three)."""
    times = sorted(published)
    if len(times) < MIN_RHYTHM_ITEMS:
        return None
    return (times[-1] - times[0]) / (len(times) - 1)


def expected_interval(source: SourceConfig, state: SourceState) -> float:
    """How often a success should come at least: the interval, or longer when the publisher asks."""
    return max(source.interval_seconds, state.publisher_interval_seconds or 0)


def health(source: SourceConfig, state: SourceState, now: datetime) -> Health:
    if state.disabled:
        return Health.DISABLED
    if state.paused:
        return Health.PAUSED
    if state.last_poll is None:
        return Health.NEW
    if state.consecutive_failures:
        return Health.FAILING
    if state.last_success is not None and (now - state.last_success).total_seconds() > STALE_INTERVALS * (
        expected_interval(source, state)
    ):
        return Health.STALE
    rhythm = rhythm_seconds(state.recent_published)
    if rhythm is not None and state.recent_published:
        silent = now.timestamp() - max(state.recent_published)
        if silent > max(RHYTHM_FACTOR * rhythm, RHYTHM_FLOOR_SECONDS):
            return Health.STALE
    return Health.OK


def ago(moment: datetime | None, now: datetime) -> str:
    """``5m ago``, ``2h from now``, ``never``: a time as an operator glances at it."""
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    word = "ago" if seconds >= 0 else "from now"
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} {word}"
    return f"{seconds:.0f}s {word}"


_REASONS = {
    "interval": "its interval_seconds ({interval})",
    "adaptive": "it publishes often: polled faster than its interval (adaptive)",
    "quiet": "it publishes rarely: polled slower than its interval (slow_down_quiet)",
    "cache": "the publisher's Cache-Control / Expires asks for no sooner",
    "feed": "the feed's <ttl> or sy:updatePeriod asks for no sooner",
    "backoff": "backing off after {failures} failure(s) in a row",
    "retry-after": "the publisher's Retry-After",
    "host-paused": "its host is paused by a Retry-After",
    "host-busy": "its host's concurrent requests are all in use",
    "host-rate-limited": "its host's requests per minute are spent",
    "disabled": "disabled: {disabled}",
    "paused": "paused by an operator",
    "enabled": "re-enabled: due now",
    "resumed": "resumed: due now",
    "added": "added at run time: due now",
}


def explain(reason: str | None, source: SourceConfig, state: SourceState) -> str:
    """Why the source waits, in a sentence."""
    if reason is None:
        return "not polled yet: due now" if state.last_poll is None else "no reason recorded"
    template = _REASONS.get(reason, reason)
    return template.format(
        interval=f"{source.interval_seconds} s",
        failures=state.consecutive_failures,
        disabled=state.disabled_reason or "no reason recorded",
    )
