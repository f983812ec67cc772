"""Polling one source: fetch -> parse -> normalise -> queue new and changed articles.

Validators (ETag / Last-Modified) are saved only after the articles are queued, so a worker
killed mid-poll refetches in full next time instead of skipping what it never queued.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from service import keys
from service.config import SourceConfig
from service.errors import ErrorKind, SourceError
from service.models import Article, RedirectRecord, SourceState
from workers.fetch.client import FetchResult, fetch
from workers.fetch.host_budget import Deferred, Slot, Verdict
from workers.ingest import drain as ingest
from workers.normalise.read import read_feed
from workers.pages import full_text, page_source
from workers.pages.article_pages import PageBatch
from workers.parse import ParsedFeed
from workers.poll import publisher_hints
from workers.poll.next_poll import decide_next_poll
from workers.poll.poll_end import PollEnd
from workers.resources import Resources

log = logging.getLogger(__name__)

MAX_REDIRECT_HISTORY = 10


class PollStatus(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"
    BUSY = "busy"  # another poll of this source holds its lease
    DEFERRED = "deferred"  # the host's budget (pause, rate, concurrency) said later; no request made
    DISABLED = "disabled"  # an operator or the publisher (410) took the source off the schedule


@dataclass
class PollReport:
    source_id: str
    status: PollStatus
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    error_kind: ErrorKind | None = None
    next_poll: datetime | None = None


async def poll_source(res: Resources, source: SourceConfig, *, claim: str | None = None) -> PollReport:
    """Poll ``source`` once. Never raises for a source's own failure: that goes in its state.

    Two Redis round trips when nothing waits: one Lua call takes the lease, reads the state and
    takes a slot of the host's budget; one Lua call at the end (:class:`PollEnd`) frees the
    slot, saves the state, reschedules and lets go of the lease.
    """
    token = uuid.uuid4().hex
    lease_ms = res.settings.worker.lease_seconds * 1000
    hosts = res.host_budget()
    host = urlsplit(source.url).hostname or ""
    leased, raw_state, first, slot_token = await hosts.begin_poll(
        keys.poll_lease(source.id), token, lease_ms, keys.source_state(source.id), host
    )
    if not leased:
        return PollReport(source.id, PollStatus.BUSY)
    finish = PollEnd(source.id, token)
    try:
        state = _load_state(source.id, raw_state)
        now = res.clock()
        if first[0] is Verdict.GRANTED:
            finish.slots.append(Slot(host, slot_token))
        if state.disabled and claim is not None:  # claimed just before an operator or a 410 disabled it
            finish.disable()
            return PollReport(source.id, PollStatus.DISABLED)
        url = state.current_url or source.url
        if (urlsplit(url).hostname or "") != host:  # moved to another host: its budget applies
            host, first = urlsplit(url).hostname or "", None
        slot = await hosts.acquire(host, first=first, token=slot_token)
        if isinstance(slot, Slot) and slot.token != slot_token:  # taken after waiting, or on the new host
            finish.slots.append(slot)
        return await _poll_with_budget(res, source, state, now, claim, finish, slot)
    finally:
        await finish.commit(hosts)


async def _poll_with_budget(
    res: Resources,
    source: SourceConfig,
    state: SourceState,
    now: datetime,
    claim: str | None,
    finish: PollEnd,
    slot: Slot | Deferred,
) -> PollReport:
    fetch_config = res.settings.fetch
    host = slot.host
    if isinstance(slot, Deferred):
        # Nothing was asked of the host: not a failure, just later. The claim stays ours.
        state.next_poll = now + timedelta(seconds=slot.wait_seconds)
        state.next_poll_reason = f"host-{slot.verdict.name.lower().replace('_', '-')}"
        finish.state_json = state.model_dump_json()
        finish.reschedule(state.next_poll, claim)
        return PollReport(source.id, PollStatus.DEFERRED, next_poll=state.next_poll)
    seen = _Seen()
    was_disabled = state.disabled
    try:
        report = await _poll(res, source, state, now, seen=seen)
    except SourceError as exc:
        report = _record_failure(source, state, now, exc)
        seen.headers = getattr(exc, "headers", None) or {}
        seen.status = exc.status
    except Exception as exc:  # a bug must not kill the worker nor strand the source
        log.exception("unexpected failure polling %s", source.id)
        wrapped = SourceError(source.id, ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        report = _record_failure(source, state, now, wrapped)

    retry_after = None
    if seen.status in (429, 503):
        retry_after = publisher_hints.retry_after(seen.headers, now)
        if retry_after is not None:
            retry_after = min(retry_after, fetch_config.retry_after_max_seconds)
            finish.pause(host, retry_after)  # every source on this host waits
    decision = decide_next_poll(
        source,
        fetch_config,
        now,
        consecutive_failures=state.consecutive_failures,
        cache_seconds=publisher_hints.cache_lifetime(seen.headers, now)
        if report.status is not PollStatus.FAILED
        else None,
        feed_seconds=state.publisher_interval_seconds,
        retry_after_seconds=retry_after,
        recent_published=state.recent_published,
    )
    report.next_poll = state.next_poll = decision.at
    state.next_poll_reason = decision.reason
    _maybe_disable(
        source, state, now, seen.status, fetch_config.max_consecutive_failures, fetch_config.disable_after_failing_days
    )
    if state.disabled:
        report.next_poll = state.next_poll = None
        state.next_poll_reason = "disabled"
        finish.disable()
    elif was_disabled:  # a success (say `tributary poll`) re-enables the source
        log.info("%s re-enabled by a successful poll", source.id)
        finish.enable(decision.at)
    else:
        finish.reschedule(decision.at, claim)
    finish.state_json = state.model_dump_json()
    return report


def _load_state(source_id: str, raw: bytes | None) -> SourceState:
    """A stored state this version cannot read is logged and started afresh, not a stuck source."""
    if not raw:
        return SourceState()
    try:
        return SourceState.model_validate_json(raw)
    except ValueError as exc:
        log.error("%s: unreadable source state, starting afresh: %s", source_id, exc)
        return SourceState()


@dataclass
class _Seen:
    """What the fetch saw that the scheduler needs: the last response's headers and status."""

    headers: Mapping[str, str] = field(default_factory=dict)
    status: int | None = None


def _maybe_disable(
    source: SourceConfig, state: SourceState, now: datetime, status: int | None, max_failures: int, max_days: float
) -> None:
    if not state.consecutive_failures:
        return
    reason = None
    if status == 410:
        reason = "HTTP 410 Gone: the publisher removed the feed"
    elif state.consecutive_failures >= max_failures:
        reason = f"{state.consecutive_failures} consecutive failures"
    elif state.failing_since is not None and now - state.failing_since >= timedelta(days=max_days):
        reason = f"failing since {state.failing_since.isoformat()}"
    if reason is not None:
        log.warning("disabling %s: %s (re-enable with `tributary enable %s`)", source.id, reason, source.id)
        state.disabled, state.disabled_reason, state.disabled_at = True, reason, now


def _wants_unconditional(state: SourceState, now: datetime, every_hours: float) -> bool:
    """Some servers answer 304 forever while the feed changes: refetch in full now and then."""
    if not (state.etag or state.last_modified):
        return True
    return state.last_unconditional is None or now - state.last_unconditional >= timedelta(hours=every_hours)


def _record_move(source: SourceConfig, state: SourceState, result: FetchResult, now: datetime) -> None:
    """A 301/308 chain moves the stored URL (the config URL stays the source's key)."""
    moved_to = result.permanent_url
    if moved_to is None:
        return
    previous = state.current_url or source.url
    if moved_to == previous:
        return
    log.warning("%s moved permanently: %s -> %s", source.id, previous, moved_to)
    status = result.redirects[-1][0]
    state.redirects = [*state.redirects, RedirectRecord(at=now, status=status, from_url=previous, to_url=moved_to)][
        -MAX_REDIRECT_HISTORY:
    ]
    state.current_url = None if moved_to == source.url else moved_to


async def _poll(
    res: Resources, source: SourceConfig, state: SourceState, now: datetime, *, seen: _Seen | None = None
) -> PollReport:
    seen = seen if seen is not None else _Seen()
    unconditional = _wants_unconditional(state, now, res.settings.fetch.force_unconditional_hours)
    result = await fetch(
        res.session,
        state.current_url or source.url,
        source_id=source.id,
        config=res.settings.fetch,
        etag=None if unconditional else state.etag,
        last_modified=None if unconditional else state.last_modified,
    )
    seen.headers, seen.status = result.headers, result.status
    _record_move(source, state, result, now)
    state.last_poll = now
    state.last_status = result.status
    if result.not_modified:
        _record_success(state, now)
        return PollReport(source.id, PollStatus.NOT_MODIFIED)
    pages: PageBatch | None = None  # article pages fetched for a page or full_content source
    parsed: ParsedFeed | None = None  # a page source has no feed to take publishing hints from
    if source.kind == "page":
        pages = await page_source.collect(res, source, result, now)
        articles, warnings = pages.articles, pages.warnings
    else:
        # Parsing and normalising are CPU-bound: keep the event loop (other sources' I/O) moving meanwhile.
        read = await asyncio.to_thread(
            read_feed,
            result.body,
            source=source,
            settings=res.settings,
            now=now,
            content_type=result.content_type,
            headers=result.headers,
        )
        parsed, articles, warnings = read.feed, read.articles, read.warnings
    for warning in warnings:
        log.warning("%s: %s", source.id, warning)
    articles = _unique(articles)
    known = await res.store.known_hashes([a.id for a in articles])
    fresh = [a for a, h in zip(articles, known, strict=True) if h != a.content_hash]
    if source.full_content and source.kind == "feed":
        pages = await full_text.complete(res, source, fresh, now)
        fresh = pages.articles
        for warning in pages.warnings:
            log.warning("%s: %s", source.id, warning)
    await ingest.publish(res.redis, source.id, fresh)
    if pages is not None:
        await pages.remember(res.redis, now, 2 * res.settings.storage.retention_per_source)
    queued = {a.id for a in fresh}
    new = sum(1 for a, h in zip(articles, known, strict=True) if h is None and a.id in queued)
    report = PollReport(source.id, PollStatus.FETCHED, new=new, updated=len(fresh) - new)
    report.unchanged = len(articles) - len(fresh)
    if pages is None or pages.complete:  # else pages were left for next poll: refetch the listing
        state.etag = result.etag
        state.last_modified = result.last_modified
        if unconditional:
            state.last_unconditional = now
    if parsed is not None:
        state.publisher_interval_seconds = publisher_hints.feed_interval(
            parsed.ttl_minutes, parsed.update_period, parsed.update_frequency
        )
        state.recent_published = _recent_published(parsed, res.settings.fetch.adaptive_window_items)
    _record_success(state, now)
    return report


def _recent_published(parsed: ParsedFeed, window: int) -> list[float]:
    times = sorted((e.published or e.updated).timestamp() for e in parsed.entries if e.published or e.updated)
    return times[-window:]


def _unique(articles: list[Article]) -> list[Article]:
    """A feed listing one entry twice yields it once (the first, as feeds list newest first)."""
    seen: dict[str, Article] = {}
    for article in articles:
        seen.setdefault(article.id, article)
    return list(seen.values())


def _record_success(state: SourceState, now: datetime) -> None:
    state.last_success = now
    state.consecutive_failures = 0
    state.last_error = state.last_error_kind = None
    state.failing_since = None
    state.disabled, state.disabled_reason, state.disabled_at = False, None, None


def _record_failure(source: SourceConfig, state: SourceState, now: datetime, exc: SourceError) -> PollReport:
    log.warning("poll of %s failed: %s", source.id, exc)
    state.last_poll = now
    state.last_error = exc.message
    state.last_error_kind = exc.kind
    state.last_error_at = now
    state.consecutive_failures += 1
    state.failing_since = state.failing_since or now
    if exc.status is not None:
        state.last_status = exc.status
    return PollReport(source.id, PollStatus.FAILED, error=exc.message, error_kind=exc.kind)
