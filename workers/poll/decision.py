"""What one poll does to a source, decided in one place. Pure: data and ``now`` in, a decision out.

The pipeline gathers the inputs (the stored state, the fetch's outcome, what reading the body
found) and applies the output (one :meth:`service.store.source_state.SourceStates.end_poll`
call); nothing here does I/O. Two steps, like the poll itself:

1. :func:`plan_request`: where to ask and with which validators (a full refetch now and then,
   for servers that answer 304 forever while the feed changes);
2. :func:`decide_poll`: the new state, when to come back and why (:func:`decide_next_poll`),
   whether the source goes off the schedule or comes back, whether its whole host waits (a
   ``Retry-After``), whether it moved for good (301/308); with push ingest on, whether the feed
   names a hub to subscribe to, and whether this pull found what push had missed (the rules
   are :mod:`service.push.lifecycle`'s).

:func:`decide_deferred` covers the poll that never asked (the host's budget said later).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from service.config import FetchConfig, PushConfig, SourceConfig
from service.errors import ErrorKind, FetchError, SourceError
from service.models import RedirectRecord, SourceState
from service.push import lifecycle
from service.push.discovery import HubLink
from service.store.host_slots import Verdict
from service.store.push_state import PushTransition
from workers.fetch.client import FetchResult
from workers.poll import publisher_hints
from workers.poll.next_poll import NextPoll, decide_next_poll
from workers.poll.publisher_hints import FeedHints

MAX_REDIRECT_HISTORY = 10
RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Statuses whose ``Retry-After`` is honoured (and pauses the whole host)."""


# Not frozen, as the other per-poll classes here: built for every poll, and a frozen
# dataclass's __init__ costs about three times a plain one's.
@dataclass(slots=True)
class PollRequest:
    """What to ask the server: where, and with which validators."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    unconditional: bool = True
    """No validators sent: a full answer is due (first fetch, or the periodic refetch)."""
    read_before: bool = True
    """The source's feed was read by an earlier poll: entries may be stored unchanged already
    (:mod:`service.store.seen_entries`); on its first read there is nothing to look up."""


@dataclass(frozen=True)
class PollFailure:
    """Why a poll failed: the fetch (no usable answer) or reading the body it got."""

    kind: ErrorKind
    message: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """The error response's headers (a ``Retry-After``); empty when there was no response."""

    @classmethod
    def of(cls, exc: SourceError) -> PollFailure:
        headers = exc.headers if isinstance(exc, FetchError) else {}
        return cls(exc.kind, exc.message, exc.status, headers)

    @classmethod
    def internal(cls, exc: BaseException) -> PollFailure:
        """A bug of ours: the source records it like any failure, so it neither stalls nor spins."""
        return cls(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class BodyFindings:
    """What reading a fetched body found that the decision needs."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    complete: bool = True
    """False when article pages were left for the next poll: keep the old validators, so the
    listing is read in full again."""
    feed: FeedHints | None = None
    """The feed's own hints; None for a page source's listing (the stored hints stay)."""
    hub: HubLink | None = None
    """The WebSub hub and topic the response or the feed names (:mod:`service.push.discovery`)."""


@dataclass(slots=True)
class PushDecision:
    """What a poll means for the source's hub subscription."""

    change: PushTransition | None = None
    """Written with the state, in the poll's last call."""
    discovered: HubLink | None = None
    """A hub to subscribe to, new for this source: the maintenance job should look at once."""
    missed: str | None = None
    """Why this pull says push failed the source (it falls back to polling)."""


@dataclass(slots=True)
class PollDecision:
    state: SourceState
    """The source's new state, to store as it is."""
    next_poll: NextPoll | None
    """When to poll next and why; None: the source is off the schedule (disabled)."""
    disable: str | None = None
    """Set when this poll disables the source: why."""
    enable: str | None = None
    """Set when this poll brings a disabled source back: why."""
    pause_host_seconds: int | None = None
    """Every source on the host waits this long (a ``Retry-After``)."""
    moved: RedirectRecord | None = None
    """A permanent move (301/308 only) to a URL not stored before."""
    failure: PollFailure | None = None
    push: PushDecision = field(default_factory=lambda: PushDecision())


def wants_unconditional(state: SourceState, now: datetime, fetch: FetchConfig) -> bool:
    """Some servers answer 304 forever while the feed changes: refetch in full now and then."""
    if not (state.etag or state.last_modified):
        return True
    return state.last_unconditional is None or now - state.last_unconditional >= timedelta(
        hours=fetch.force_unconditional_hours
    )


def plan_request(source: SourceConfig, state: SourceState, now: datetime, fetch: FetchConfig) -> PollRequest:
    url = state.current_url or source.url
    read_before = state.last_success is not None
    if wants_unconditional(state, now, fetch):
        return PollRequest(url, read_before=read_before)
    return PollRequest(url, state.etag, state.last_modified, unconditional=False, read_before=read_before)


def decide_deferred(state: SourceState, now: datetime, verdict: Verdict, wait_seconds: float) -> PollDecision:
    """Nothing was asked of the host: not a failure, just later (the claim stays ours)."""
    reason = f"host-{verdict.name.lower().replace('_', '-')}"
    next_poll = NextPoll(now + timedelta(seconds=wait_seconds), reason)
    return PollDecision(state.model_copy(update={"next_poll": next_poll.at, "next_poll_reason": reason}), next_poll)


def decide_poll(
    source: SourceConfig,
    state: SourceState,
    request: PollRequest,
    outcome: FetchResult | PollFailure,
    found: BodyFindings | PollFailure | None,
    now: datetime,
    fetch: FetchConfig,
    push: PushConfig | None = None,
) -> PollDecision:
    """The decision for one poll that asked.

    ``outcome`` is the response (any status the fetch returns: 2xx, 304) or why there is none
    (an error status comes as a failure with its status and headers); ``found`` is what reading
    a 2xx body gave, or why it failed, and None when nothing was read (304, failed fetch).
    ``push`` is ``[push]`` when the source may subscribe to its hub, else None.
    """
    # The changes, gathered in a dict and applied by one model_copy: the fields are typed by
    # construction here, and a copy per poll beats a validated setattr per field (the 304 path).
    new: dict[str, Any] = {"last_poll": now}
    response = outcome if isinstance(outcome, FetchResult) else None
    failure = outcome if isinstance(outcome, PollFailure) else found if isinstance(found, PollFailure) else None
    moved = None
    if response is not None:
        new["last_status"] = response.status
        moved = _moved(source, state, response, now) if response.redirects else None
        if moved is not None:
            new["redirects"] = [*state.redirects, moved][-MAX_REDIRECT_HISTORY:]
            new["current_url"] = None if moved.to_url == source.url else moved.to_url
    if failure is not None:
        _record_failure(new, state, failure, now)
    elif response is not None:
        _record_success(new, request, response, found if isinstance(found, BodyFindings) else None, state, now)

    pushed = PushDecision()
    push_state = state.push
    if push is not None and isinstance(found, BodyFindings):
        pushed = _push(state, found, now, push)
        push_state = new["push"] = lifecycle.applied(state.push, pushed.change)
    retry_after = _retry_after(failure, now, fetch)
    failures = new.get("consecutive_failures", state.consecutive_failures)
    next_poll = decide_next_poll(
        source,
        fetch,
        now,
        consecutive_failures=failures,
        cache_seconds=publisher_hints.cache_lifetime(response.headers, now) if response and not failure else None,
        feed_seconds=new.get("publisher_interval_seconds", state.publisher_interval_seconds),
        retry_after_seconds=retry_after,
        recent_published=new.get("recent_published", state.recent_published),
        push_backup_seconds=lifecycle.backup_seconds(push_state, now, push) if push is not None else None,
    )

    disable = None
    if failure is not None:
        disable = _disable_reason(failure, failures, new.get("failing_since", state.failing_since), now, fetch)
    if disable is not None:
        new.update(disabled=True, disabled_reason=disable, disabled_at=now)
    if new.get("disabled", state.disabled) or state.paused:  # a manual poll of a paused source leaves it paused
        new.update(next_poll=None, next_poll_reason="disabled" if new.get("disabled", state.disabled) else "paused")
        return PollDecision(
            state.model_copy(update=new),
            None,
            disable=disable,
            pause_host_seconds=retry_after,
            moved=moved,
            failure=failure,
            push=pushed,
        )
    new.update(next_poll=next_poll.at, next_poll_reason=next_poll.reason)
    return PollDecision(
        state.model_copy(update=new),
        next_poll,
        enable="a successful poll" if state.disabled else None,  # (never a paused one: returned above)
        pause_host_seconds=retry_after,
        moved=moved,
        failure=failure,
        push=pushed,
    )


def _push(state: SourceState, found: BodyFindings, now: datetime, config: PushConfig) -> PushDecision:
    """What a read body means for the hub subscription: a hub to subscribe to, or a miss."""
    if lifecycle.wants_subscription(state.push, found.hub) and found.hub is not None:
        return PushDecision(lifecycle.discovered(state.push, found.hub, now, config), discovered=found.hub)
    reason = lifecycle.miss_reason(state.push, found.new, state.last_success, state.last_poll, now)
    if reason is not None and state.push is not None:
        return PushDecision(lifecycle.missed(state.push, reason, now, config), missed=reason)
    return PushDecision()


def _moved(source: SourceConfig, state: SourceState, response: FetchResult, now: datetime) -> RedirectRecord | None:
    """A chain of only 301/308 moves the stored URL (the config URL stays the source's key)."""
    moved_to = response.permanent_url
    previous = state.current_url or source.url
    if moved_to is None or moved_to == previous:
        return None
    return RedirectRecord(at=now, status=response.redirects[-1][0], from_url=previous, to_url=moved_to)


def _record_success(
    new: dict[str, Any],
    request: PollRequest,
    response: FetchResult,
    found: BodyFindings | None,
    state: SourceState,
    now: datetime,
) -> None:
    """A success's changes to ``state``, added to ``new``."""
    if found is not None:  # a body was read (not a 304)
        if found.complete:  # validators only once everything they cover was taken
            new["etag"], new["last_modified"] = response.etag, response.last_modified
            if request.unconditional:
                new["last_unconditional"] = now
        if found.feed is not None:
            new["publisher_interval_seconds"] = found.feed.interval_seconds
            new["recent_published"] = list(found.feed.recent_published)
        new["articles_total"] = state.articles_total + found.new
    new["last_success"] = now
    # Clear what a failure left, if any: a source polled without trouble has nothing to clear,
    # and every key in ``new`` costs the copy (the 304 path's).
    failed = (
        state.consecutive_failures
        or state.last_error is not None
        or state.last_error_kind is not None
        or state.failing_since is not None
    )
    if failed:
        new.update(consecutive_failures=0, last_error=None, last_error_kind=None, failing_since=None)
    if state.disabled or state.disabled_reason is not None or state.disabled_at is not None:
        new.update(disabled=False, disabled_reason=None, disabled_at=None)


def _record_failure(new: dict[str, Any], state: SourceState, failure: PollFailure, now: datetime) -> None:
    """A failure's changes to ``state``, added to ``new``."""
    new.update(
        last_error=failure.message,
        last_error_kind=failure.kind,
        last_error_at=now,
        consecutive_failures=state.consecutive_failures + 1,
        failing_since=state.failing_since or now,
    )
    if failure.status is not None:
        new["last_status"] = failure.status


def _retry_after(failure: PollFailure | None, now: datetime, fetch: FetchConfig) -> int | None:
    if failure is None or failure.status not in RETRY_AFTER_STATUSES:
        return None
    seconds = publisher_hints.retry_after(failure.headers, now)
    return None if seconds is None else min(seconds, fetch.retry_after_max_seconds)


def _disable_reason(
    failure: PollFailure, failures: int, failing_since: datetime | None, now: datetime, fetch: FetchConfig
) -> str | None:
    if failure.kind is ErrorKind.GONE:
        return "HTTP 410 Gone: the publisher removed the feed"
    if failures >= fetch.max_consecutive_failures:
        return f"{failures} consecutive failures"
    if failing_since is not None and now - failing_since >= timedelta(days=fetch.disable_after_failing_days):
        return f"failing since {failing_since.isoformat()}"
    return None
