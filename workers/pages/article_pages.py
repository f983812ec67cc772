"""Fetching and extracting article pages for page sources and full_content feeds.

Pages go through :func:`workers.fetch.client.fetch` (the polite fetcher: caps, timeouts, redirects),
a few at a time per poll, extraction off the event loop. A page that fails is a logged warning,
never a failed poll; failures are sorted into *transient* (retry next poll) and *permanent*
(remember it and move on) so a dead link is not refetched forever and a timeout is not lost.

What was fetched is remembered per source in a Redis zset (see :mod:`service.keys`), written
only after the articles are queued, like a feed's validators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from redis.asyncio import Redis

from service.config import SourceConfig
from service.errors import ErrorKind, SourceError
from service.models import Article
from workers.extract import ExtractedPage, extract_page
from workers.fetch.client import fetch
from workers.fetch.host_budget import Deferred
from workers.resources import Resources

log = logging.getLogger(__name__)

PAGE_CONCURRENCY = 4
"""Article pages fetched at once per poll: enough to hide latency, few enough to be polite."""
SEEN_MIN = 1000
"""Remembered page URLs per source at least (more when retention keeps more articles)."""
TRANSIENT = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECT, ErrorKind.DNS, ErrorKind.TLS, ErrorKind.SERVER, ErrorKind.RATE_LIMITED}
)


@dataclass
class PageOutcome:
    """One article page: its extraction, or why there is none and whether to try again."""

    url: str
    page: ExtractedPage | None = None
    error: str | None = None
    transient: bool = False


@dataclass
class PageBatch:
    """What a poll got from article pages, and what to remember once the articles are queued."""

    articles: list[Article] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen_key: str | None = None
    seen: list[str] = field(default_factory=list)
    complete: bool = True
    """False when pages were left for the next poll: the caller must then not save validators."""

    async def remember(self, redis: Redis, now: datetime, cap: int) -> None:
        if not self.seen_key or not self.seen:
            return
        cap = max(SEEN_MIN, cap)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.seen_key, {member: now.timestamp() for member in self.seen})
            pipe.zremrangebyrank(self.seen_key, 0, -cap - 1)
            await pipe.execute()


async def fetch_pages(res: Resources, source: SourceConfig, urls: Sequence[str]) -> list[PageOutcome]:
    """Fetch and extract each of ``urls`` (in order), :data:`PAGE_CONCURRENCY` at a time."""
    gate = asyncio.Semaphore(PAGE_CONCURRENCY)

    async def one(url: str) -> PageOutcome:
        async with gate:
            return await _fetch_page(res, source, url)

    return list(await asyncio.gather(*(one(url) for url in urls)))


async def _fetch_page(res: Resources, source: SourceConfig, url: str) -> PageOutcome:
    """One article page, within its host's politeness budget like any poll (a busy host: later)."""
    hosts = res.host_budget()
    slot = await hosts.acquire(urlsplit(url).hostname or "")
    if isinstance(slot, Deferred):
        return PageOutcome(
            url, error=f"host {slot.host} {slot.verdict.name.lower()}, retried next poll", transient=True
        )
    try:
        return await _fetch_and_extract(res, source, url)
    finally:
        await hosts.release(slot)


async def _fetch_and_extract(res: Resources, source: SourceConfig, url: str) -> PageOutcome:
    try:
        result = await fetch(res.session, url, source_id=source.id, config=res.settings.fetch)
        page = await res.off_loop(
            extract_page, result.body, url, source.selectors, source.zone, content_type=result.content_type
        )
    except SourceError as exc:
        return PageOutcome(url, error=f"{exc.kind}: {exc.message}", transient=exc.kind in TRANSIENT)
    except Exception as exc:  # an extractor bug on one page must not fail the poll
        log.exception("%s: extracting %s crashed", source.id, url)
        return PageOutcome(url, error=f"internal: {type(exc).__name__}: {exc}")
    return PageOutcome(url, page=page)


async def unseen(redis: Redis, key: str, members: Sequence[str]) -> list[str]:
    """``members`` not yet in the zset ``key``, order kept."""
    if not members:
        return []
    scores = await redis.zmscore(key, list(members))
    return [m for m, score in zip(members, scores, strict=True) if score is None]
