"""Rendered feed bytes, cached per process and invalidated when the feed's version moves.

A request costs one Redis GET (the feed's version counter) on the cached path; rendering and
compression happen once per change of the feed's content, not per request, so a feed's bytes
and ETag change only when its items do.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from service.config import FeedConfig, Settings
from service.merge import FORMATS, MergedFeed, build_merged_feed
from service.render import render
from service.store import Store


@dataclass
class Rendered:
    body: bytes
    content_type: str
    last_modified: datetime | None
    etag: str = ""
    _gzip: bytes | None = None

    def __post_init__(self) -> None:
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'

    @property
    def gzip(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzip


@dataclass
class Snapshot:
    version: int
    feed: MergedFeed
    renders: dict[str, Rendered] = field(default_factory=dict)

    def rendered(self, fmt: str) -> Rendered:
        if fmt not in self.renders:
            content_type = FORMATS[fmt] + "; charset=utf-8"
            self.renders[fmt] = Rendered(render(self.feed, fmt), content_type, self.feed.updated)
        return self.renders[fmt]


class FeedCache:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings
        self._snapshots: dict[str, Snapshot] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def snapshot(self, feed: FeedConfig) -> Snapshot:
        version = await self.store.feed_version(feed.name)
        cached = self._snapshots.get(feed.name)
        if cached is not None and cached.version == version:
            return cached
        lock = self._locks.setdefault(feed.name, asyncio.Lock())
        async with lock:  # one rebuild per change, however many requests arrive meanwhile
            cached = self._snapshots.get(feed.name)
            if cached is not None and cached.version == version:
                return cached
            articles = await self.store.feed_articles(feed.name, feed.limit)
            snapshot = Snapshot(version, build_merged_feed(self.settings, feed, articles))
            self._snapshots[feed.name] = snapshot
            return snapshot
