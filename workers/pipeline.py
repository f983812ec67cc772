"""Polling one source: fetch -> parse -> normalise -> queue new and changed articles.

Validators (ETag / Last-Modified) are saved only after the articles are queued, so a worker
killed mid-poll refetches in full next time instead of skipping what it never queued.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import aiohttp
from redis.asyncio import Redis

from service import keys
from service.clock import Clock
from service.config import Settings, SourceConfig
from service.errors import ErrorKind, SourceError
from service.models import Article, SourceState
from service.store import Store
from workers import dispatch, full_text, ingest, page_source
from workers.article_pages import PageBatch
from workers.fetch import fetch
from workers.normalise import normalise_feed
from workers.parse import parse_feed
from workers.schedule import next_poll_at

log = logging.getLogger(__name__)

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class PollStatus(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"
    BUSY = "busy"  # another poll of this source holds its lease


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


@dataclass
class Resources:
    """What a poll needs, built once per worker process and passed in (never global)."""

    settings: Settings
    redis: Redis
    store: Store
    session: aiohttp.ClientSession
    clock: Clock


async def poll_source(res: Resources, source: SourceConfig, *, claim: str | None = None) -> PollReport:
    """Poll ``source`` once. Never raises for a source's own failure: that goes in its state."""
    token = uuid.uuid4().hex
    lease_ms = res.settings.worker.lease_seconds * 1000
    if not await res.redis.set(keys.poll_lease(source.id), token, nx=True, px=lease_ms):
        return PollReport(source.id, PollStatus.BUSY)
    try:
        state = await res.store.source_state(source.id)
        now = res.clock()
        try:
            report = await _poll(res, source, state, now)
        except SourceError as exc:
            report = _record_failure(source, state, now, exc)
        except Exception as exc:  # a bug must not kill the worker nor strand the source
            log.exception("unexpected failure polling %s", source.id)
            wrapped = SourceError(source.id, ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}")
            report = _record_failure(source, state, now, wrapped)
        report.next_poll = state.next_poll = next_poll_at(
            source, now, consecutive_failures=state.consecutive_failures
        )
        await res.store.save_source_state(source.id, state)
        await dispatch.reschedule(res.redis, source.id, state.next_poll, claim)
        return report
    finally:
        await res.redis.eval(_RELEASE, 1, keys.poll_lease(source.id), token)


async def _poll(res: Resources, source: SourceConfig, state: SourceState, now: datetime) -> PollReport:
    result = await fetch(
        res.session,
        source.url,
        source_id=source.id,
        config=res.settings.fetch,
        etag=state.etag,
        last_modified=state.last_modified,
    )
    state.last_poll = now
    state.last_status = result.status
    if result.not_modified:
        _record_success(state, now)
        return PollReport(source.id, PollStatus.NOT_MODIFIED)
    pages: PageBatch | None = None  # article pages fetched for a page or full_content source
    if source.kind == "page":
        pages = await page_source.collect(res, source, result, now)
        articles, warnings = pages.articles, pages.warnings
    else:
        # feedparser is CPU-bound: keep the event loop (other sources' I/O) moving meanwhile.
        parsed = await asyncio.to_thread(
            parse_feed,
            result.body,
            source_id=source.id,
            url=source.url,  # not the redirect target: relative guids resolve against it, ids must not move
            content_type=result.content_type,
            headers=result.headers,
            default_tz=source.zone,
        )
        articles, warnings = normalise_feed(
            parsed, source=source, now=now, sanitise=res.settings.sanitise, canonical=res.settings.canonical
        )
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
    _record_success(state, now)
    return report


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


def _record_failure(source: SourceConfig, state: SourceState, now: datetime, exc: SourceError) -> PollReport:
    log.warning("poll of %s failed: %s", source.id, exc)
    state.last_poll = now
    state.last_error = exc.message
    state.last_error_kind = exc.kind
    state.last_error_at = now
    state.consecutive_failures += 1
    if exc.status is not None:
        state.last_status = exc.status
    return PollReport(source.id, PollStatus.FAILED, error=exc.message, error_kind=exc.kind)
