"""Polling one source: gather (lease, state, host slot, fetch, parse, normalise, queue), decide, apply.

What the poll means for the source is decided by :func:`workers.poll.decision.decide_poll`
(pure); this module only gathers its inputs and applies its output in one Redis call at the end.
Validators (ETag / Last-Modified) are saved only then, after the articles are queued, so a
worker killed mid-poll refetches in full next time instead of skipping what it never queued.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from service.config import PushConfig, Settings, SourceConfig
from service.errors import ErrorKind, SourceError
from service.models import Article, PollRecord
from service.push.discovery import HubLink, discover
from service.store.availability import REDIS_DOWN
from service.store.dead_letters import DeadLetters
from service.store.host_slots import Slot, Verdict, new_token
from service.store.seen_entries import SeenEntry
from service.store.source_state import Disable, Enable, HostPause, PollBegin, PollEnd, PollStart, Refusal, Reschedule
from workers.fetch.client import FetchResult, fetch
from workers.fetch.host_budget import Deferred
from workers.ingest import drain as ingest
from workers.normalise.read import FeedRead, read_feed
from workers.pages import full_text, page_source
from workers.pages.article_pages import PageBatch
from workers.poll.decision import (
    BodyFindings,
    PollDecision,
    PollFailure,
    PollRequest,
    decide_deferred,
    decide_poll,
    plan_request,
)
from workers.poll.publisher_hints import FeedHints, feed_hints
from workers.resources import Resources

log = logging.getLogger(__name__)


class PollStatus(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"
    BUSY = "busy"  # another poll of this source holds its lease
    SUPERSEDED = "claim_superseded"  # the dispatcher's claim no longer holds (or lapsed): another job polls
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
    push_discovered: bool = False
    """The feed names a hub new for this source: its subscription wants a look now."""


async def poll_source(res: Resources, source: SourceConfig, *, claim: str | None = None) -> PollReport:
    """Poll ``source`` once. Never raises for a source's own failure: that goes in its state.

    Two Redis round trips when nothing waits: one Lua call takes the lease, reads the state and
    takes a slot of the host's budget; one Lua call at the end frees the slot, saves the state,
    reschedules and lets go of the lease (:class:`service.store.source_state.SourceStates`).
    """
    begin = poll_begin(res, source, claim)
    start = (await res.store.sources.begin_polls([begin]))[0]
    return await run_poll(res, source, begin, start)


def poll_begin(res: Resources, source: SourceConfig, claim: str | None) -> PollBegin:
    """What the first call of a poll of ``source`` asks for (a fresh lease token, now)."""
    hosts = res.host_budget()
    return PollBegin(
        source.id,
        new_token(),
        res.settings.worker.lease_seconds * 1000,
        host_of(source.url),
        hosts.limits,
        res.clock(),
        claim,
        push=push_policy(res.settings, source) is not None,
    )


@functools.lru_cache(maxsize=1 << 16)
def host_of(url: str) -> str:
    """The host whose budget a request to ``url`` takes (``""`` for none, and for a name with
    control characters, which no request can reach); remembered, as every poll of a source asks
    it of the same URL."""
    host = urlsplit(url).hostname or ""
    return host if host.isprintable() else ""


async def run_poll(
    res: Resources,
    source: SourceConfig,
    begin: PollBegin,
    start: PollStart | Refusal,
    *,
    ends: list[asyncio.Future[None]] | None = None,
) -> PollReport:
    """The rest of a poll once its first call answered: wait for the host if need be, fetch,
    read, decide, and end it (:meth:`SourceStates.end_poll`, shared with concurrent polls).

    With ``ends``, the poll's last call is handed in without waiting and its future appended
    there: a batch waits for all its polls' ends at once (:func:`workers.poll.batch.poll_batch`).
    """
    if start is Refusal.LEASED:
        return PollReport(source.id, PollStatus.BUSY)
    if start is Refusal.CLAIM_LAPSED:
        return PollReport(source.id, PollStatus.SUPERSEDED)
    hosts = res.host_budget()
    host, now = begin.host, begin.now
    finish = PollEnd(source.id, begin.lease_token)
    try:
        state = start.state
        first: tuple[Verdict, float] | None = (start.verdict, start.wait_seconds)
        if start.verdict is Verdict.GRANTED:
            finish.slots.append(Slot(host, start.slot_token))
        if (state.disabled or state.paused) and start.claim is not None:  # claimed just before it went off the schedule
            finish.schedule = Disable()
            return PollReport(source.id, PollStatus.DISABLED)
        url = state.current_url or source.url
        if host_of(url) != host:  # moved to another host: its budget applies
            host, first = host_of(url), None
        if first is not None and start.verdict is Verdict.GRANTED:  # the slot taken at the start
            slot: Slot | Deferred = finish.slots[0]
        else:
            slot = await hosts.acquire(host, first=first, token=start.slot_token)
            if isinstance(slot, Slot) and slot.token != start.slot_token:  # taken after waiting, or on the new host
                finish.slots.append(slot)
        if isinstance(slot, Deferred):
            decision = decide_deferred(state, now, slot.verdict, slot.wait_seconds)
            _apply(decision, finish, host, start.claim, now)
            return PollReport(source.id, PollStatus.DEFERRED, next_poll=decision.state.next_poll)
        request = plan_request(source, state, now, res.settings.fetch)
        began = time.perf_counter()
        outcome, found = await _fetch_and_read(res, source, request, now)
        push = res.settings.push if begin.push else None  # push_policy(), as the poll began
        decision = decide_poll(source, state, request, outcome, found, now, res.settings.fetch, push)
        _apply(decision, finish, host, start.claim, now)
        finish.record = _record(res, now, outcome, found, decision, time.perf_counter() - began)
        _log(source, decision)
        return _report(source, decision, found)
    finally:
        if ends is None:
            await res.store.sources.end_poll(finish)
        else:
            ends.append(res.store.sources.end_poll_soon(finish))


async def _fetch_and_read(
    res: Resources, source: SourceConfig, request: PollRequest, now: datetime
) -> tuple[FetchResult | PollFailure, BodyFindings | PollFailure | None]:
    """The decision's inputs: the fetch's outcome, then what reading the body found (if read)."""
    began = time.perf_counter()
    try:
        result = await fetch(
            res.session,
            request.url,
            source_id=source.id,
            config=res.settings.fetch,
            etag=request.etag,
            last_modified=request.last_modified,
        )
    except SourceError as exc:
        res.counters.observe("fetch_duration_seconds", time.perf_counter() - began)
        return PollFailure.of(exc), None
    except REDIS_DOWN:
        raise  # not the source's failure: the job ends, its claim lapses, it is dispatched again
    except Exception as exc:  # a bug must not kill the worker nor strand the source
        log.exception("unexpected failure fetching %s", source.id)
        return PollFailure.internal(exc), None
    res.counters.observe("fetch_duration_seconds", time.perf_counter() - began)
    res.counters.inc("fetch_bytes_total", len(result.body))
    if result.not_modified:
        return result, None
    try:
        return result, await read_body(res, source, result, now, read_before=request.read_before)
    except SourceError as exc:
        return result, PollFailure.of(exc)
    except REDIS_DOWN:
        raise  # not the source's failure (see above)
    except Exception as exc:
        log.exception("unexpected failure reading %s", source.id)
        return result, PollFailure.internal(exc)


def push_policy(settings: Settings, source: SourceConfig) -> PushConfig | None:
    """``[push]`` when the source may subscribe to its publisher's hub, else None."""
    return settings.push if settings.push_enabled and source.push and source.kind == "feed" else None


async def read_body(
    res: Resources, source: SourceConfig, result: FetchResult, now: datetime, *, read_before: bool = True
) -> BodyFindings:
    """Parse and normalise the body, queue the new and changed articles; raises ``SourceError``.

    A poll's 2xx body, and a hub's fat ping (the same path: same ids, dedup and queue).
    ``read_before``: see :attr:`workers.poll.decision.PollRequest.read_before`.
    """
    pages: PageBatch | None = None  # article pages fetched for a page or full_content source
    read: FeedRead | None = None
    seen: dict[bytes, SeenEntry] | None = None  # the entries the last read found stored unchanged
    hints: FeedHints | None = None  # a page source has no feed to take publishing hints from
    hub: HubLink | None = None
    if source.kind == "page":
        pages = await page_source.collect(res, source, result, now)
        articles, warnings = pages.articles, pages.warnings
    else:
        # Entries known to be stored unchanged are not normalised again (full text replaces
        # what a feed says, so its sources' articles never match their entries: none is known).
        seen = await res.store.seen_entries.get(source.id) if read_before and not source.full_content else None
        # Parsing and normalising are CPU-bound: keep the event loop (other sources' I/O) moving meanwhile.
        read = await res.off_loop(
            read_feed,
            result.body,
            source=source,
            settings=res.settings,
            now=now,
            content_type=result.content_type,
            headers=result.headers,
            seen=seen,
        )
        parsed, articles, warnings = read.feed, read.articles, read.warnings
        await DeadLetters(res.redis).add_articles(source.id, read.rejected, now)  # nothing dropped silently
        hints = feed_hints(parsed, res.settings.fetch.adaptive_window_items)
        hub = discover(result.headers, parsed.hubs, parsed.self_url, result.url)
    for warning in warnings:
        log.warning("%s: %s", source.id, warning)
    articles = _unique(articles)
    known = await res.store.known_hashes([a.id for a in articles])
    fresh = [a for a, h in zip(articles, known, strict=True) if h != a.content_hash]
    if read is not None and seen is not None:
        stored = {read.keys[a.id] for a, h in zip(articles, known, strict=True) if h == a.content_hash}
        stored.update(read.unchanged_keys)
        record = {key: read.records[key] for key in stored}
        if record != seen:  # a feed read unchanged (a server without validators) writes nothing
            await res.store.seen_entries.replace(source.id, record)
    if source.full_content and source.kind == "feed":
        pages = await full_text.complete(res, source, fresh, now)
        fresh = pages.articles
        for warning in pages.warnings:
            log.warning("%s: %s", source.id, warning)
    size = await ingest.publish(res.redis, source.id, fresh)
    if fresh and res.on_queued is not None:
        res.on_queued(len(fresh), size)
    if pages is not None:
        await pages.remember(res.redis, now, 2 * res.settings.storage.retention_per_source)
    queued = {a.id for a in fresh}
    new = sum(1 for a, h in zip(articles, known, strict=True) if h is None and a.id in queued)
    return BodyFindings(
        new=new,
        updated=len(fresh) - new,
        unchanged=len(articles) - len(fresh) + (len(read.unchanged_keys) if read is not None else 0),
        complete=pages is None or pages.complete,
        feed=hints,
        hub=hub,
    )


def _unique(articles: list[Article]) -> list[Article]:
    """A feed listing one entry twice yields it once (the first, as feeds list newest first)."""
    seen: dict[str, Article] = {}
    for article in articles:
        seen.setdefault(article.id, article)
    return list(seen.values())


def _apply(decision: PollDecision, finish: PollEnd, host: str, claim: str | None, now: datetime) -> None:
    """The decision as the intents of the poll's last Redis call."""
    finish.state = decision.state
    finish.push = decision.push.change
    if decision.next_poll is None:
        finish.schedule = Disable()
    elif decision.enable is not None:
        finish.schedule = Enable(decision.next_poll.at)
    else:
        finish.schedule = Reschedule(decision.next_poll.at, claim)
    if decision.pause_host_seconds:
        finish.pause = HostPause(host, decision.pause_host_seconds, now)


def _record(
    res: Resources,
    now: datetime,
    outcome: FetchResult | PollFailure,
    found: BodyFindings | PollFailure | None,
    decision: PollDecision,
    seconds: float,
) -> PollRecord:
    """The poll for the source's history and the workers' counters."""
    failure = decision.failure
    findings = found if isinstance(found, BodyFindings) else None
    kind = failure.kind.value if failure is not None else "modified" if findings is not None else "not_modified"
    res.counters.inc("polls_total", outcome=kind)
    res.counters.tick("polls", 1, now)
    if findings is not None:  # a body was read: count what it held
        for name, count in (("new", findings.new), ("updated", findings.updated), ("unchanged", findings.unchanged)):
            if count:
                res.counters.inc("articles_total", count, outcome=name)
        if findings.new:
            res.counters.tick("new", findings.new, now)
    return PollRecord(  # validated: pydantic builds it sooner than model_construct would
        at=now,
        outcome=kind,
        status=decision.state.last_status,
        duration_ms=round(seconds * 1000),
        bytes=len(outcome.body) if isinstance(outcome, FetchResult) else 0,
        new=findings.new if findings is not None else 0,
        updated=findings.updated if findings is not None else 0,
        error=failure.message[:300] if failure is not None else None,
    )


def _log(source: SourceConfig, decision: PollDecision) -> None:
    if decision.moved is not None:
        log.warning("%s moved permanently: %s -> %s", source.id, decision.moved.from_url, decision.moved.to_url)
    if decision.failure is not None:
        log.warning("poll of %s failed: %s: %s", source.id, decision.failure.kind, decision.failure.message)
    if decision.disable is not None:
        log.warning("disabling %s: %s (re-enable with `tributary enable %s`)", source.id, decision.disable, source.id)
    if decision.enable is not None:
        log.info("%s re-enabled by %s", source.id, decision.enable)
    if decision.push.discovered is not None:
        log.info(
            "%s names the WebSub hub %s (topic %s)",
            source.id,
            decision.push.discovered.hub,
            decision.push.discovered.topic,
        )
    if decision.push.missed is not None:
        log.warning("%s: %s; polling it normally again", source.id, decision.push.missed)


def _report(source: SourceConfig, decision: PollDecision, found: BodyFindings | PollFailure | None) -> PollReport:
    next_poll = decision.next_poll.at if decision.next_poll is not None else None
    failure = decision.failure
    if failure is not None:
        return PollReport(
            source.id, PollStatus.FAILED, error=failure.message, error_kind=failure.kind, next_poll=next_poll
        )
    if not isinstance(found, BodyFindings):
        return PollReport(source.id, PollStatus.NOT_MODIFIED, next_poll=next_poll)
    return PollReport(
        source.id,
        PollStatus.FETCHED,
        found.new,
        found.updated,
        found.unchanged,
        next_poll=next_poll,
        push_discovered=decision.push.discovered is not None,
    )
