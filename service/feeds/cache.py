"""Rendered feed bytes, cached per process and invalidated when the feed's version moves.

Rendering and compression happen once per change of a feed's content (per normalised query),
not per request, so a feed's bytes and ETag change only when its items do. The cache is bounded
in bytes (``[server] render_cache_bytes``, :mod:`service.feeds.lru`): every rendering and each
compressed copy is counted, plus an estimate of the items a snapshot holds; the plain feeds'
current snapshots are pinned (counted, never evicted), queried ones evicted least recently used. With a
:class:`~service.feeds.watch.FeedWatch` subscribed, the cached path does no Redis round trip at
all; without one (or while its subscription is down) it costs one GET of the version counter.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

import brotli

from service.config import FeedConfig, Settings
from service.feed_filter import feed_filter_matches
from service.feeds.lru import ByteLRU
from service.feeds.merge import FORMATS, MergedFeed, build_merged_feed
from service.feeds.query import (
    Cursor,
    FeedQuery,
    has_filters,
    query_matches,
)
from service.feeds.render import render
from service.feeds.render.html import render_feed_page
from service.feeds.watch import FeedWatch
from service.models import Article
from service.store.articles import Store

HTML_TYPE = "text/html; charset=utf-8"
MAX_QUERY_ENTRIES = 256  # cached snapshots of ad-hoc queries and pages, all feeds together (bytes bound first)
ITEM_OVERHEAD_BYTES = 1024  # what an Article object costs beyond its texts, roughly
MAX_LIMIT_BATCH = 1001  # index entries read per round trip
MAX_SCAN = 5000  # index entries one filtered page may examine before handing out a cursor
BROTLI_QUALITY = 9  # close to 11's size at a fraction of its time; paid once per change


@dataclass
class Rendered:
    body: bytes
    content_type: str
    last_modified: datetime | None
    etag: str = ""
    link: str | None = None  # the HTTP Link header (hub and self) of a feed rendering
    on_grow: Callable[[int], None] | None = field(default=None, repr=False)  # told each compressed copy's size
    _encoded: dict[str, bytes] = field(default_factory=dict)
    _headers: dict[tuple[str | None, int, str, bool], dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'

    def etag_for(self, coding: str | None) -> str:
        """A strong validator per representation: the compressed bytes differ from the plain ones."""
        return self.etag if coding is None else self.etag[:-1] + "-" + coding + '"'

    def same_content(self, opaque_tag: str) -> bool:
        """``opaque_tag`` (an entity tag without its quotes and ``W/``) names this content in any coding."""
        plain = self.etag[1:-1]
        if opaque_tag == plain:
            return True
        base, _, coding = opaque_tag.rpartition("-")
        return base == plain and coding in ("gzip", "br")

    def encoded(self, coding: str | None) -> bytes:
        if coding is None:
            return self.body
        body = self._encoded.get(coding)
        if body is None:
            if coding == "gzip":
                body = gzip.compress(self.body, compresslevel=6, mtime=0)
            elif coding == "br":
                body = brotli.compress(self.body, quality=BROTLI_QUALITY)
            else:
                raise ValueError(f"unknown content coding {coding!r}")
            self._encoded[coding] = body
            if self.on_grow is not None:
                self.on_grow(len(body))
        return body

    @property
    def gzip(self) -> bytes:
        return self.encoded("gzip")

    def headers(self, coding: str | None, max_age: int, vary: str, full: bool) -> dict[str, str]:
        """Response headers, built once per variant: the cached path only looks them up.
        ``full`` adds the entity headers a 200 carries and a 304 leaves out."""
        key = (coding, max_age, vary, full)
        headers = self._headers.get(key)
        if headers is None:
            headers = {"ETag": self.etag_for(coding), "Cache-Control": f"public, max-age={max_age}", "Vary": vary}
            if self.link is not None:
                headers["Link"] = self.link
            if self.last_modified is not None:
                headers["Last-Modified"] = format_datetime(self.last_modified, usegmt=True)
            if full:
                if coding is not None:
                    headers["Content-Encoding"] = coding
                headers["Content-Type"] = self.content_type
            self._headers[key] = headers
        return headers


@dataclass
class Snapshot:
    version: int
    feed: MergedFeed
    renders: dict[str, Rendered] = field(default_factory=dict)
    on_grow: Callable[[int], None] | None = field(default=None, repr=False)  # told each rendering's size

    def rendered(self, fmt: str) -> Rendered:
        if fmt not in self.renders:
            if fmt == "html":
                rendered = Rendered(render_feed_page(self.feed), HTML_TYPE, self.feed.updated, on_grow=self.on_grow)
            else:
                content_type = FORMATS[fmt] + "; charset=utf-8"
                link = f'<{self.feed.hub_url}>; rel="hub", <{self.feed.self_urls[fmt]}>; rel="self"'
                body = render(self.feed, fmt)
                rendered = Rendered(body, content_type, self.feed.updated, link=link, on_grow=self.on_grow)
            self.renders[fmt] = rendered
            if self.on_grow is not None:
                self.on_grow(len(rendered.body))
        return self.renders[fmt]

    @property
    def size(self) -> int:
        """Bytes held now: the renderings and their compressed copies, plus the items (estimated)."""
        items = sum(
            len(a.title) + len(a.summary or "") + len(a.content or "") + len(a.summary_text or "") + ITEM_OVERHEAD_BYTES
            for a in self.feed.items
        )
        return items + sum(len(r.body) + sum(len(b) for b in r._encoded.values()) for r in self.renders.values())


@dataclass
class _Checked:
    version: int
    stamp: tuple[int, int] | None
    at: float


class FeedCache:
    def __init__(self, store: Store, settings: Settings, watch: FeedWatch | None = None):
        self.store = store
        self.settings = settings
        self.watch = watch
        self._checked: dict[str, _Checked] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # Keyed (feed, normalised query); the plain feeds (query "") pinned.
        self._snapshots: ByteLRU[tuple[str, str], Snapshot] = ByteLRU(
            settings.server.render_cache_bytes,
            max_entries=MAX_QUERY_ENTRIES,
            on_evict=lambda key: self._locks.pop(key, None),
        )
        self.hits = 0  # requests served from a cached rendering (for /metrics)
        self.misses = 0  # renderings built

    @property
    def cached_bytes(self) -> int:
        return self._snapshots.bytes

    async def version(self, feed_name: str) -> int:
        checked = self._checked.get(feed_name)
        watch = self.watch
        if checked is not None and watch is not None and watch.still_valid(feed_name, checked.stamp, checked.at):
            return checked.version
        stamp = watch.stamp(feed_name) if watch is not None else None  # read before the GET
        at = time.monotonic() if watch is None else watch.monotonic()
        version = await self.store.feed_version(feed_name)
        self._checked[feed_name] = _Checked(version, stamp, at)
        return version

    def _cached(self, key: tuple[str, str]) -> Snapshot | None:
        return self._snapshots.get(key)

    def _keep(self, key: tuple[str, str], snapshot: Snapshot) -> None:
        # A weak reference: a snapshot holding a closure that holds the snapshot is a cycle, freed
        # only by the cyclic collector, and evicted renderings then pile up between collections.
        ref = weakref.ref(snapshot)

        def grew(added: int) -> None:
            if (kept := ref()) is not None:
                self._snapshots.grew(key, kept, added)

        snapshot.on_grow = grew
        self._snapshots.put(key, snapshot, snapshot.size, pinned=key[1] == "")

    def fresh(self, feed_name: str) -> Snapshot | None:
        """The plain feed's snapshot if it can be served with no I/O at all (the hot path)."""
        checked = self._checked.get(feed_name)
        watch = self.watch
        if checked is None or watch is None or not watch.still_valid(feed_name, checked.stamp, checked.at):
            return None
        snapshot = self._snapshots.get((feed_name, ""))
        if snapshot is not None and snapshot.version == checked.version:
            self.hits += 1
            return snapshot
        return None

    def last_good(self, feed_name: str, query: FeedQuery | None = None) -> Snapshot | None:
        """The newest rendering kept for this feed and query, whatever its version: what is
        served while Redis is away. None when it was never rendered (or was evicted)."""
        return self._cached((feed_name, (query or FeedQuery()).key))

    async def snapshot(self, feed: FeedConfig, query: FeedQuery | None = None) -> Snapshot:
        query = query or FeedQuery()
        key = (feed.name, query.key)
        version = await self.version(feed.name)
        cached = self._cached(key)
        if cached is not None and cached.version == version:
            self.hits += 1
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one rebuild per change, however many requests arrive meanwhile
            cached = self._cached(key)
            if cached is not None and cached.version == version:
                return cached
            snapshot = Snapshot(version, await self._build(feed, query))
            self.misses += 1
            self._keep(key, snapshot)
            return snapshot

    async def _build(self, feed: FeedConfig, query: FeedQuery) -> MergedFeed:
        size = query.page_size(feed)
        items, next_position = await self._collect(feed, query, size)
        return build_merged_feed(
            self.settings,
            feed,
            items,
            limit=size,
            query=query.query_string(),
            next_query=query.query_string(cursor=next_position) if next_position is not None else None,
            first_query=FeedQuery(query.tags, query.sources, query.q, query.limit).query_string()
            if query.cursor is not None
            else None,
        )

    async def _collect(self, feed: FeedConfig, query: FeedQuery, size: int) -> tuple[list[Article], Cursor | None]:
        """The page's items and the position after it (None on the last page).

        Walks the index from the cursor in batches, keeping the items that pass the feed's
        filters and the query; stops at ``size`` items or after ``MAX_SCAN`` entries, handing
        out a cursor either way so a sparse filter never makes one request unbounded.
        """
        filtered = has_filters(feed, query)
        batch_size = min(MAX_LIMIT_BATCH, size * 2 if filtered else size + 1)
        position = (query.cursor.score, query.cursor.id) if query.cursor else None
        items: list[Article] = []
        scanned = 0
        while True:
            rows = await self.store.feed_index_page(feed.name, position, batch_size)
            docs = {a.id: a for a in await self.store.articles([i for i, _ in rows])}
            for article_id, score in rows:
                if len(items) == size:
                    # There is at least one more entry: the page ends at the previous one.
                    return items, Cursor(*position) if position else None
                position = (score, article_id)
                article = docs.get(article_id)
                if (
                    article is not None
                    and feed_filter_matches(feed, article)
                    and query_matches(query, self.settings, article)
                ):
                    items.append(article)
            scanned += len(rows)
            if len(rows) < batch_size:
                return items, None
            if scanned >= MAX_SCAN and position is not None:
                return items, Cursor(*position)
