"""The hand-off from polling to the store: a Redis stream read by a consumer group.

Why a stream rather than one arq job per batch: an entry stays *pending* until the consumer that
read it acknowledges it after the upsert, so a worker killed in between leaves it pending and the
next drain (any worker) reclaims it with XAUTOCLAIM. Delivery is at least once and the upsert is
idempotent (same content hash -> unchanged), so nothing is lost and nothing is duplicated. The
stream is also an operator-visible queue (length, pending, deliveries) for free. Entries that fail
``MAX_DELIVERIES`` times move to a dead-letter stream with their error instead of blocking the queue.

A worker usually drains what its own polls just queued: :func:`publish` keeps the typed articles
and their documents (the newest, up to ``HANDOFF_ARTICLES`` articles and ``HANDOFF_BYTES`` of
documents), under a token written into the entry, and the drain that reads an entry carrying one
of its tokens takes them instead of validating the JSON and serialising each article again (most
of the drain's CPU otherwise).
The entry is still read, acknowledged and reclaimed like any other: only the decoding is skipped.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service import keys
from service.clock import Clock
from service.models import Article, UpsertOutcome
from service.store.articles import Store, document

log = logging.getLogger(__name__)

ARTICLES = TypeAdapter(list[Article])
MAX_DELIVERIES = 5
RECLAIM_IDLE_MS = 60_000
BATCH = 20
HANDOFF_ARTICLES = 2_000
"""Articles :func:`publish` keeps for this process's drain, at most (about 20 MB of 2 KB articles;
other workers' drains take some entries, and a drain falling behind leaves more: the oldest are
forgotten)."""
HANDOFF_BYTES = 32 * 1024 * 1024
"""Bytes of documents kept, at most: ``[limits]`` lets an article hold a megabyte of content, and
2,000 of those would be gigabytes (each kept twice: the document and the typed article)."""


@dataclass
class IngestReport:
    outcomes: Counter[UpsertOutcome] = field(default_factory=Counter)
    entries: int = 0
    dead: int = 0
    sources: set[str] = field(default_factory=set)
    changed: dict[str, set[str]] = field(default_factory=dict)  # feed -> ids new/updated in it


async def ensure_group(redis: Redis) -> None:
    try:
        await redis.xgroup_create(keys.INGEST_STREAM, keys.INGEST_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True)
class _Queued:
    articles: list[Article]
    documents: list[bytes]
    """Each article's stored JSON (:func:`service.store.articles.document`)."""

    @functools.cached_property
    def size(self) -> int:
        """Bytes of the documents: the hand-off's bound (summed once: put, take and publish ask)."""
        return sum(map(len, self.documents))


class _Handoff:
    """The entries this process queued and has not drained yet, oldest first, within a bound of
    articles and one of document bytes."""

    def __init__(self, max_articles: int = HANDOFF_ARTICLES, max_bytes: int = HANDOFF_BYTES):
        self._entries: OrderedDict[bytes, _Queued] = OrderedDict()
        self._articles = 0
        self._bytes = 0
        self._max_articles = max_articles
        self._max_bytes = max_bytes

    def put(self, token: bytes, queued: _Queued) -> None:
        self._entries[token] = queued
        self._articles += len(queued.articles)
        self._bytes += queued.size
        while self._articles > self._max_articles or self._bytes > self._max_bytes:
            _, forgotten = self._entries.popitem(last=False)
            self._articles -= len(forgotten.articles)
            self._bytes -= forgotten.size

    def take(self, token: bytes) -> _Queued | None:
        queued = self._entries.pop(token, None)
        if queued is not None:
            self._articles -= len(queued.articles)
            self._bytes -= queued.size
        return queued


_handoff = _Handoff()


async def publish(redis: Redis, source_id: str, articles: Sequence[Article]) -> int:
    """Queue one poll's new and changed articles; returns the bytes of their documents queued
    (the hand-off's measure: :class:`workers.ingest.behind.DrainBehind` drains by it).

    The entry's ``articles`` are the JSON list of the articles' documents (what
    ``ARTICLES.dump_json`` writes); ``token`` names them in this process's hand-off.
    """
    if not articles:
        return 0
    queued = _Queued(list(articles), [document(article) for article in articles])
    # Random, not counted (forked workers would share a counter), and not from os.urandom: a
    # system call lets the parse threads take the interpreter lock from the event loop.
    token = random.getrandbits(128).to_bytes(16)
    payload = b"[" + b",".join(queued.documents) + b"]"
    await redis.xadd(keys.INGEST_STREAM, {"source_id": source_id, "articles": payload, "token": token})
    _handoff.put(token, queued)
    return queued.size


def _decoded(fields: dict[bytes, bytes]) -> tuple[list[Article], list[bytes] | None]:
    """The entry's articles, and their documents when :func:`publish` in this process handed
    them off; else validated from the entry."""
    queued = _handoff.take(fields.get(b"token", b""))
    if queued is None:
        return ARTICLES.validate_json(fields[b"articles"]), None
    return queued.articles, queued.documents


async def drain(
    redis: Redis,
    store: Store,
    clock: Clock,
    consumer: str,
    *,
    max_entries: int = 1000,
    reclaim_idle_ms: int = RECLAIM_IDLE_MS,
    own_pending: bool = False,
) -> IngestReport:
    """Upsert queued articles until the stream has nothing for us (or ``max_entries``).

    ``own_pending`` first takes again what this consumer read and never acknowledged (Redis
    went away mid-drain), instead of leaving it for a reclaim ``reclaim_idle_ms`` later.

    Each feed the batch moved gets one version bump and one change announcement at the end of
    the batch (:meth:`Store.announce_moved`), not one per article: readers re-render a feed once
    per batch, however many articles it brought. The entries stored are acknowledged together
    at the end of their read batch too: a worker dying before that has them delivered again,
    and the upsert finds them unchanged.
    """
    await ensure_group(redis)
    report = IngestReport()
    try:
        while report.entries < max_entries:
            entries = await _read_own_pending(redis, consumer) if own_pending else []
            own_pending = False
            entries = entries or await _reclaim(redis, consumer, reclaim_idle_ms) or await _read_new(redis, consumer)
            if not entries:
                break
            stored = [
                entry_id
                for entry_id, fields in entries
                if await _ingest_entry(redis, store, clock(), entry_id, fields, report)
            ]
            await _acknowledge(redis, stored)
            await store.announce_moved()
        for source_id in report.sources:
            await store.trim_source(source_id, clock(), announce=False)
    finally:
        await store.announce_moved()
    return report


async def _read_new(redis: Redis, consumer: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    answer = await redis.xreadgroup(keys.INGEST_GROUP, consumer, {keys.INGEST_STREAM: ">"}, count=BATCH)
    return answer[0][1] if answer else []


async def _read_own_pending(redis: Redis, consumer: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    answer = await redis.xreadgroup(keys.INGEST_GROUP, consumer, {keys.INGEST_STREAM: "0"}, count=BATCH * 10)
    return [(eid, fields) for eid, fields in answer[0][1] if fields] if answer else []


async def _reclaim(redis: Redis, consumer: str, idle_ms: int) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Entries another consumer read but never acknowledged (it died mid-ingest)."""
    _, claimed, *_ = await redis.xautoclaim(
        keys.INGEST_STREAM, keys.INGEST_GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=BATCH
    )
    return [(eid, fields) for eid, fields in claimed if fields]


async def _ingest_entry(
    redis: Redis, store: Store, now: datetime, entry_id: bytes, fields: dict[bytes, bytes], report: IngestReport
) -> bool:
    """Store one entry; True when it is stored and awaits its acknowledgement (a dead-lettered
    one is acknowledged already, a failed one is left pending)."""
    stored = False
    try:
        articles, documents = _decoded(fields)
        outcomes = await store.upsert_many(articles, now, announce=False, documents=documents)
        feeds = {source_id: store.settings.feeds_of_source(source_id) for source_id in {a.source_id for a in articles}}
        for article, outcome in zip(articles, outcomes, strict=True):
            report.outcomes[outcome] += 1
            if outcome is not UpsertOutcome.UNCHANGED:
                # a merged copy shows up in its source's feeds as the article that owns it
                shown = await redis.get(keys.alias(article.id)) if outcome is UpsertOutcome.MERGED else None
                shown_id = shown.decode() if shown else article.id
                for feed in feeds[article.source_id]:
                    report.changed.setdefault(feed, set()).add(shown_id)
        report.sources.update(feeds)
        stored = True
    except (ValidationError, KeyError) as exc:
        await _dead_letter(redis, entry_id, fields, f"undecodable entry: {exc}")
        report.dead += 1
    except Exception as exc:  # a WriteConflict (an upsert losing every race) among them: retried later
        deliveries = await _deliveries(redis, entry_id)
        if deliveries < MAX_DELIVERIES:
            log.warning("ingest of %s failed (try %d), will retry: %r", entry_id, deliveries, exc)
            return False  # left pending; reclaimed after RECLAIM_IDLE_MS
        await _dead_letter(redis, entry_id, fields, repr(exc))
        report.dead += 1
    report.entries += 1  # stored, or dead-lettered (acknowledged with its move)
    return stored


async def _acknowledge(redis: Redis, entry_ids: Sequence[bytes]) -> None:
    """Acknowledge and delete stored entries, in one transaction."""
    if not entry_ids:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(keys.INGEST_STREAM, keys.INGEST_GROUP, *entry_ids)
        pipe.xdel(keys.INGEST_STREAM, *entry_ids)
        await pipe.execute()


async def _deliveries(redis: Redis, entry_id: bytes) -> int:
    pending = await redis.xpending_range(keys.INGEST_STREAM, keys.INGEST_GROUP, entry_id, entry_id, 1)
    return int(pending[0]["times_delivered"]) if pending else 1


async def _dead_letter(redis: Redis, entry_id: bytes, fields: dict[bytes, bytes], error: str) -> None:
    log.error("ingest entry %s moved to dead letters: %s", entry_id, error)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.INGEST_DEAD, {**fields, b"error": error.encode(), b"original_id": entry_id})
        pipe.xack(keys.INGEST_STREAM, keys.INGEST_GROUP, entry_id)
        pipe.xdel(keys.INGEST_STREAM, entry_id)
        await pipe.execute()
