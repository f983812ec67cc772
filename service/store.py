"""The Redis store: article documents, time indexes, per-source state, the ingest stream.

Layout (all names in :mod:`service.keys`):

- ``article:{id}``: the article as JSON; ``content-hash`` hash: id -> content_hash, so a poll can
  tell new/changed/unchanged with one HMGET instead of fetching documents.
- ``source:{id}:index`` and ``feed:{name}:index``: zsets id -> published, newest = highest.
- ``feed:{name}:version``: bumped on every change to the feed's items; keys the render cache.
- ``changes``: zset id -> time of its last change, for incremental sync.
- ``source:{id}:state``: :class:`SourceState` as JSON.

Writes to one article are optimistic transactions (WATCH), so two ingesters racing on the same
id still produce exactly one outcome each and never lose an update.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.config import Settings
from service.models import Article, SourceState, UpsertOutcome
from service.upsert import decide_upsert

log = logging.getLogger(__name__)

CONTENT_HASHES = keys.PREFIX + "content-hash"


class Store:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings

    # -- articles ---------------------------------------------------------------------------

    async def known_hashes(self, article_ids: Sequence[str]) -> list[str | None]:
        if not article_ids:
            return []
        values = await self.redis.hmget(CONTENT_HASHES, list(article_ids))
        return [v.decode() if v is not None else None for v in values]

    async def upsert(self, incoming: Article, now: datetime) -> UpsertOutcome:
        key = keys.article(incoming.id)
        feeds = self.settings.feeds_of_source(incoming.source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    old = Article.model_validate_json(raw) if raw else None
                    outcome, stored = decide_upsert(old, incoming, now)
                    if outcome is UpsertOutcome.UNCHANGED:
                        await pipe.unwatch()
                        return outcome
                    pipe.multi()
                    self._write(pipe, stored, feeds, now)
                    await pipe.execute()
                    return outcome
                except WatchError:
                    continue

    def _write(self, pipe: Redis, article: Article, feeds: Iterable[str], now: datetime) -> None:
        score = article.published.timestamp()
        pipe.set(keys.article(article.id), article.model_dump_json())
        pipe.hset(CONTENT_HASHES, article.id, article.content_hash)
        pipe.zadd(keys.source_index(article.source_id), {article.id: score})
        pipe.zadd(keys.CHANGES, {article.id: now.timestamp()})
        for feed in feeds:
            pipe.zadd(keys.feed_index(feed), {article.id: score})
            pipe.incr(keys.feed_version(feed))
            pipe.publish(self.changes_channel, feed)

    async def trim_source(self, source_id: str) -> int:
        """Apply retention: keep the newest ``retention_per_source`` articles of the source."""
        keep = self.settings.storage.retention_per_source
        index = keys.source_index(source_id)
        excess = await self.redis.zcard(index) - keep
        if excess <= 0:
            return 0
        doomed = [i.decode() for i in await self.redis.zrange(index, 0, excess - 1)]
        feeds = self.settings.feeds_of_source(source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(index, *doomed)
            pipe.hdel(CONTENT_HASHES, *doomed)
            pipe.zrem(keys.CHANGES, *doomed)
            pipe.delete(*(keys.article(i) for i in doomed))
            for feed in feeds:
                pipe.zrem(keys.feed_index(feed), *doomed)
                pipe.incr(keys.feed_version(feed))
                pipe.publish(self.changes_channel, feed)
            await pipe.execute()
        log.info("retention removed %d articles of %s", len(doomed), source_id)
        return len(doomed)

    async def articles(self, article_ids: Sequence[str]) -> list[Article]:
        """Documents for the ids, in order; ids whose document vanished are skipped."""
        if not article_ids:
            return []
        raws = await self.redis.mget([keys.article(i) for i in article_ids])
        return [Article.model_validate_json(raw) for raw in raws if raw is not None]

    async def article(self, article_id: str) -> Article | None:
        found = await self.articles([article_id])
        return found[0] if found else None

    async def feed_articles(self, feed_name: str, limit: int) -> list[Article]:
        ids = await self.redis.zrevrange(keys.feed_index(feed_name), 0, limit - 1)
        return await self.articles([i.decode() for i in ids])

    async def source_articles(self, source_id: str, limit: int) -> list[Article]:
        ids = await self.redis.zrevrange(keys.source_index(source_id), 0, limit - 1)
        return await self.articles([i.decode() for i in ids])

    async def feed_count(self, feed_name: str) -> int:
        return int(await self.redis.zcard(keys.feed_index(feed_name)))

    async def feed_version(self, feed_name: str) -> int:
        return int(await self.redis.get(keys.feed_version(feed_name)) or 0)

    @property
    def changes_channel(self) -> str:
        """Where a feed's name is published whenever its version moves (see service.feed_watch)."""
        return keys.feed_changes_channel(int(self.redis.connection_pool.connection_kwargs.get("db", 0)))

    async def feed_index_page(self, feed_name: str, after: tuple[float, str] | None, count: int) -> list[tuple[str, float]]:
        """Up to ``count`` (id, score) of the feed index, newest first, strictly after the position
        ``after`` = (score, id) in that order (Redis orders equal scores by id, reversed here)."""
        index = keys.feed_index(feed_name)
        if after is None:
            rows = await self.redis.zrevrange(index, 0, count - 1, withscores=True)
            return [(i.decode(), s) for i, s in rows]
        score, last_id = after
        async with self.redis.pipeline(transaction=False) as pipe:
            # Same score, smaller id (lexicographic range), then strictly lower scores.
            pipe.zrevrangebyscore(index, score, score, withscores=True)
            pipe.zrevrangebyscore(index, f"({score!r}", "-inf", start=0, num=count, withscores=True)
            same, lower = await pipe.execute()
        ties = [(i.decode(), s) for i, s in same if i.decode() < last_id]
        return (ties + [(i.decode(), s) for i, s in lower])[:count]

    async def rebuild_feed_indexes(self) -> None:
        """Derive a feed's index from its sources' when its membership changed in the config."""
        for feed in self.settings.feeds:
            members = self.settings.feed_source_ids(feed)
            fingerprint = ",".join(sorted(members))
            built_from = await self.redis.get(keys.feed_members(feed.name))
            if built_from is not None and built_from.decode() == fingerprint:
                continue
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.feed_index(feed.name))
                if members:
                    pipe.zunionstore(keys.feed_index(feed.name), [keys.source_index(s) for s in members], aggregate="MAX")
                pipe.set(keys.feed_members(feed.name), fingerprint)
                pipe.incr(keys.feed_version(feed.name))
                pipe.publish(self.changes_channel, feed.name)
                await pipe.execute()

    # -- sources ----------------------------------------------------------------------------

    async def source_state(self, source_id: str) -> SourceState:
        raw = await self.redis.get(keys.source_state(source_id))
        return SourceState.model_validate_json(raw) if raw else SourceState()

    async def save_source_state(self, source_id: str, state: SourceState) -> None:
        await self.redis.set(keys.source_state(source_id), state.model_dump_json())

    async def source_count(self, source_id: str) -> int:
        return int(await self.redis.zcard(keys.source_index(source_id)))
