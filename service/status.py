"""How a source is doing and why it waits, in words an operator reads. Pure: data and ``now`` in.

Health, worst first:

- ``disabled``: off the schedule after a 410 or too many failures (``tributary enable``);
- ``paused``: an operator paused it (``tributary sources resume``);
- ``failing``: its last poll failed;
- ``stale``: it answers, but no new article for far longer than its own rhythm
  (:data:`RHYTHM_FACTOR` times the mean gap between its newest items, at least
  :data:`RHYTHM_FLOOR_SECONDS`), or it was last heard of (a successful poll, or a delivery from
  its publisher's WebSub hub) more than :data:`STALE_INTERVALS` intervals ago. While the hub
  pushes, the interval is the backup poll's (``[push] backup_poll_seconds``, read from the
  schedule): a daily backup poll is not a sign of staleness when deliveries keep coming;
- ``new``: never polled yet; ``ok``: the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from service.config import SourceConfig
from service.models import PushStatus, PushSubscription, SourceState

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
    """How often a success should come at least: the interval, or longer when the publisher asks,
    or the backup poll's while the publisher's hub pushes (the gap the schedule set, jitter
    included, when the last poll chose ``push-backup``)."""
    interval: float = max(source.interval_seconds, state.publisher_interval_seconds or 0)
    if state.next_poll_reason == "push-backup" and state.next_poll is not None and state.last_poll is not None:
        interval = max(interval, (state.next_poll - state.last_poll).total_seconds())
    return interval


def last_heard(state: SourceState) -> datetime | None:
    """The newest sign of life: the last successful poll or the last delivery from its hub."""
    delivery = state.push.last_delivery if state.push is not None else None
    times = [t for t in (state.last_success, delivery) if t is not None]
    return max(times) if times else None


def health(source: SourceConfig, state: SourceState, now: datetime) -> Health:
    if state.disabled:
        return Health.DISABLED
    if state.paused:
        return Health.PAUSED
    if state.last_poll is None:
        return Health.NEW
    if state.consecutive_failures:
        return Health.FAILING
    heard = last_heard(state)
    if heard is not None and (now - heard).total_seconds() > STALE_INTERVALS * expected_interval(source, state):
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
    "push-backup": "its publisher's hub pushes new items: polled only as a backup ([push] backup_poll_seconds)",
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


def push_marker(push: PushSubscription | None, now: datetime) -> str:
    """A list's short word for the subscription: ``push`` while the hub is expected to push,
    else its status (``pending``, ``fallback``, ...); ``-`` without one."""
    if push is None:
        return "-"
    return "push" if push.live(now) else f"push {push.status.value}"


def push_facts(push: PushSubscription, now: datetime) -> list[tuple[str, str]]:
    """The subscription as an operator reads it: hub, state, lease end, last delivery, misses."""
    state = push.status.value + (" (live)" if push.live(now) else "")
    if push.status is PushStatus.FALLBACK and push.fallback_until is not None:
        state += f", polled normally until {ago(push.fallback_until, now)}"
        state += f": {push.fallback_reason}" if push.fallback_reason else ""
    if push.error and not push.live(now):
        state += f"; {push.error}"
    return [
        ("hub", push.hub),
        ("state", state),
        ("lease end", ago(push.lease_end, now)),
        ("last delivery", f"{ago(push.last_delivery, now)} ({push.deliveries} in all)"),
        ("misses", f"{push.misses}" + (f", last {ago(push.last_miss, now)}" if push.last_miss else "")),
    ]
