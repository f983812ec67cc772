"""The Redis store: article documents, time indexes, per-source state, the ingest stream.

Layout (all names in :mod:`service.keys`):

- ``article:{id}``: the article as JSON; ``content-hash`` hash: id -> content_hash, so a poll can
  tell new/changed/unchanged with one HMGET instead of fetching documents.
- ``source:{id}:index`` and ``feed:{name}:index``: zsets id -> published, newest = highest.
- ``feed:{name}:version``: bumped on every change to the feed's items; keys the render cache.
- ``changes``: zset id -> time of its last change, for incremental sync.
- ``source:{id}:state``, the schedule, the disabled set: :mod:`service.store.source_state`.

Writes to one article are optimistic transactions (WATCH), so two ingesters racing on the same
id still produce exactly one outcome each and never lose an update. An upsert that keeps losing
races gives up after ``MAX_UPSERT_TRIES`` with :class:`WriteConflict` (the ingest retries it).

Cross-source dedup (docs/article-schema.md): ``url:{hash}`` names the article that owns a
canonical URL. Another source's copy of it is not stored as a second article: its source is
added to the owner's ``sources``, the owner is indexed in that source's and its feeds' indexes
(so merged feeds show it once), and ``alias:{copy id}`` remembers where the copy went. The URL
key and the alias are WATCHed with the article, so two sources racing on one URL still make
one article. With ``[dedup] fuzzy_titles`` a near-identical title within the window merges
too (candidates from ``recent`` and ``titles``). A changed article keeps its previous versions
in ``article:{id}:revisions`` (``[storage] max_revisions``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.config import Settings
from service.errors import WriteConflict
from service.models import Article, Revision, SourceRef, UpsertOutcome
from service.store import dedup
from service.store.source_state import SourceStates
from service.store.upsert import decide_upsert

log = logging.getLogger(__name__)

FUZZY_CANDIDATES = 500
MAX_UPSERT_TRIES = 50
"""Optimistic tries of one upsert; past them :class:`WriteConflict` leaves the caller to retry later."""


class Store:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings
        self.sources = SourceStates(redis)
        """Source state, the schedule and the disabled set."""

    # -- articles ---------------------------------------------------------------------------

    async def known_hashes(self, article_ids: Sequence[str]) -> list[str | None]:
        if not article_ids:
            return []
        values = await self.redis.hmget(keys.CONTENT_HASHES, list(article_ids))
        return [v.decode() if v is not None else None for v in values]

    async def upsert(self, incoming: Article, now: datetime) -> UpsertOutcome:
        key = keys.article(incoming.id)
        feeds = self.settings.feeds_of_source(incoming.source_id)
        url_key = keys.url_owner(incoming.url) if incoming.url and dedup.identifies_article(incoming.url) else None
        fuzzy = self.settings.dedup.fuzzy_titles
        watched = [key, keys.alias(incoming.id), *([url_key] if url_key else []), *([keys.RECENT] if fuzzy else [])]
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_UPSERT_TRIES):
                try:
                    await pipe.watch(*watched)
                    raw = await pipe.get(key)
                    old = Article.model_validate_json(raw) if raw else None
                    if old is None:
                        owner = await self._owner_of(pipe, incoming, url_key, fuzzy)
                        if owner is not None:
                            return await self._merge(pipe, owner, incoming, now)
                    outcome, stored = decide_upsert(old, incoming, now)
                    if outcome is UpsertOutcome.UNCHANGED:
                        await pipe.unwatch()
                        return outcome
                    stale_url_key = None
                    if old is not None and old.url != stored.url and dedup.identifies_article(old.url):
                        stale_url_key = keys.url_owner(old.url)  # type: ignore[arg-type]
                        if (await pipe.get(stale_url_key) or b"").decode() != stored.id:
                            stale_url_key = None
                    pipe.multi()
                    self._write(pipe, stored, feeds, now)
                    if old is not None:
                        self._keep_revision(pipe, old, now)
                    if stale_url_key:
                        pipe.delete(stale_url_key)
                    if url_key and (old is None or old.url != stored.url):
                        pipe.set(url_key, stored.id)
                    await pipe.execute()
                    return outcome
                except WatchError:
                    continue
        raise WriteConflict(
            f"article {incoming.id} of {incoming.source_id}: lost {MAX_UPSERT_TRIES} races to other writers"
        )

    async def _owner_of(self, pipe: Redis, incoming: Article, url_key: str | None, fuzzy: bool) -> Article | None:
        """The stored article of another source that ``incoming`` is a copy of, if any.

        Every key read here is WATCHed first, so a concurrent change restarts the upsert.
        """
        alias = await pipe.get(keys.alias(incoming.id))
        if alias is not None and (owner := await self._watched_article(pipe, alias.decode())) is not None:
            return owner
        if url_key is not None:
            owner_id = await pipe.get(url_key)
            if owner_id is not None and owner_id.decode() != incoming.id:
                owner = await self._watched_article(pipe, owner_id.decode())
                if owner is not None and owner.source_id != incoming.source_id:
                    return owner
        if fuzzy:
            owner_id = await self._fuzzy_owner(pipe, incoming)
            if owner_id is not None:
                return await self._watched_article(pipe, owner_id)
        return None

    async def _watched_article(self, pipe: Redis, article_id: str) -> Article | None:
        await pipe.watch(keys.article(article_id))
        raw = await pipe.get(keys.article(article_id))
        return Article.model_validate_json(raw) if raw else None

    async def _fuzzy_owner(self, pipe: Redis, incoming: Article) -> str | None:
        config = self.settings.dedup
        published = incoming.published.timestamp()
        window = config.fuzzy_window_hours * 3600
        found = await pipe.zrangebyscore(
            keys.RECENT, published - window, published + window, start=0, num=FUZZY_CANDIDATES, withscores=True
        )
        if not found:
            return None
        ids = [member.decode() for member, _ in found]
        titles = await pipe.hmget(keys.TITLES, ids)
        candidates = []
        for (_, score), article_id, entry in zip(found, ids, titles, strict=True):
            if entry is not None:
                source_id, _, title = entry.decode().partition("\t")
                candidates.append((article_id, source_id, title, score))
        return dedup.fuzzy_match(
            incoming.title,
            incoming.published,
            candidates,
            source_id=incoming.source_id,
            threshold=config.fuzzy_threshold,
            window_hours=config.fuzzy_window_hours,
        )

    async def _merge(self, pipe: Redis, owner: Article, incoming: Article, now: datetime) -> UpsertOutcome:
        """Record ``incoming`` (another source's copy) on ``owner`` instead of storing it."""
        refs = incoming.sources or (self._own_ref(incoming),)
        merged = dedup.add_sources(owner, refs, self._own_ref(owner))
        alias = await pipe.get(keys.alias(incoming.id))
        known_hash = await pipe.hget(keys.CONTENT_HASHES, incoming.id)
        if (
            merged is None
            and alias is not None
            and alias.decode() == owner.id
            and known_hash is not None
            and known_hash.decode() == incoming.content_hash
        ):
            await pipe.unwatch()
            return UpsertOutcome.UNCHANGED
        score = owner.published.timestamp()
        feeds = set(self.settings.feeds_of_source(incoming.source_id))
        pipe.multi()
        pipe.set(keys.alias(incoming.id), owner.id)
        # The copy's own hash: the poll's "is this new or changed?" check stays one HMGET.
        pipe.hset(keys.CONTENT_HASHES, incoming.id, incoming.content_hash)
        pipe.zadd(keys.source_index(incoming.source_id), {owner.id: score})
        if merged is not None:
            pipe.set(keys.article(owner.id), merged.model_dump_json())
            pipe.zadd(keys.CHANGES, {owner.id: now.timestamp()})
            for ref in merged.sources:  # every feed showing the article shows its provenance
                feeds.update(self.settings.feeds_of_source(ref.id))
        for feed in feeds:
            if feed in self.settings.feeds_of_source(incoming.source_id):
                pipe.zadd(keys.feed_index(feed), {owner.id: score})
            if merged is not None:
                pipe.incr(keys.feed_version(feed))
        await pipe.execute()
        return UpsertOutcome.MERGED if merged is not None else UpsertOutcome.UNCHANGED

    def _own_ref(self, article: Article) -> SourceRef:
        source = self.settings.source(article.source_id)
        name = source.display_name if source else article.source_id
        return dedup.own_ref(article, name, source.url if source else None)

    def _keep_revision(self, pipe: Redis, old: Article, now: datetime) -> None:
        keep = self.settings.storage.max_revisions
        if keep <= 0:
            return
        revision = Revision(
            content_hash=old.content_hash,
            title=old.title,
            summary=old.summary,
            content=old.content,
            updated=old.updated,
            replaced_at=now,
        )
        pipe.lpush(keys.revisions(old.id), revision.model_dump_json())
        pipe.ltrim(keys.revisions(old.id), 0, keep - 1)

    async def revisions(self, article_id: str) -> list[Revision]:
        """Previous versions of an article, newest first (at most ``[storage] max_revisions``)."""
        raws = await self.redis.lrange(keys.revisions(article_id), 0, -1)
        return [Revision.model_validate_json(raw) for raw in raws]

    def _write(self, pipe: Redis, article: Article, feeds: Iterable[str], now: datetime) -> None:
        score = article.published.timestamp()
        pipe.set(keys.article(article.id), article.model_dump_json())
        pipe.hset(keys.CONTENT_HASHES, article.id, article.content_hash)
        pipe.zadd(keys.source_index(article.source_id), {article.id: score})
        pipe.zadd(keys.CHANGES, {article.id: now.timestamp()})
        pipe.zadd(keys.RECENT, {article.id: score})
        pipe.hset(keys.TITLES, article.id, f"{article.source_id}\t{dedup.title_key(article.title)}")
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
        listed = [i.decode() for i in await self.redis.zrange(index, 0, excess - 1)]
        docs = dict(zip(listed, await self.redis.mget([keys.article(i) for i in listed]), strict=True))
        feeds = self.settings.feeds_of_source(source_id)
        parsed = {i: Article.model_validate_json(raw) for i, raw in docs.items() if raw}
        # Articles another source owns (merged copies) only leave this source's indexes.
        foreign = {i: a for i, a in parsed.items() if a.source_id != source_id}
        doomed = [i for i in listed if i not in foreign]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(index, *listed)
            for article_id, article in foreign.items():
                still_shown = {
                    f for ref in article.sources if ref.id != source_id for f in self.settings.feeds_of_source(ref.id)
                }
                still_shown.update(self.settings.feeds_of_source(article.source_id))
                for feed in feeds:
                    if feed not in still_shown:
                        pipe.zrem(keys.feed_index(feed), article_id)
            for article_id in doomed:  # an owned article leaves the sources merged into it too
                for ref in parsed[article_id].sources if article_id in parsed else ():
                    if ref.id != source_id:
                        pipe.zrem(keys.source_index(ref.id), article_id)
                        for feed in self.settings.feeds_of_source(ref.id):
                            pipe.zrem(keys.feed_index(feed), article_id)
                            pipe.incr(keys.feed_version(feed))
            if doomed:
                pipe.hdel(keys.CONTENT_HASHES, *doomed)
                pipe.zrem(keys.CHANGES, *doomed)
                pipe.zrem(keys.RECENT, *doomed)
                pipe.hdel(keys.TITLES, *doomed)
                pipe.delete(*(keys.article(i) for i in doomed), *(keys.revisions(i) for i in doomed))
                for feed in feeds:
                    pipe.zrem(keys.feed_index(feed), *doomed)
            for feed in feeds:
                pipe.incr(keys.feed_version(feed))
                pipe.publish(self.changes_channel, feed)
            await pipe.execute()
        log.info("retention removed %d articles of %s (%d deleted)", len(listed), source_id, len(doomed))
        return len(listed)

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
        """Where a feed's name is published whenever its version moves (see service.feeds.watch)."""
        return keys.feed_changes_channel(int(self.redis.connection_pool.connection_kwargs.get("db", 0)))

    async def feed_index_page(
        self, feed_name: str, after: tuple[float, str] | None, count: int
    ) -> list[tuple[str, float]]:
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
                    pipe.zunionstore(
                        keys.feed_index(feed.name), [keys.source_index(s) for s in members], aggregate="MAX"
                    )
                pipe.set(keys.feed_members(feed.name), fingerprint)
                pipe.incr(keys.feed_version(feed.name))
                pipe.publish(self.changes_channel, feed.name)
                await pipe.execute()
