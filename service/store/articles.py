"""The Redis store: article documents, time indexes, per-source state, the ingest stream.

Layout (all names in :mod:`service.keys`):

- ``article:{id}``: the article as JSON; ``content-hash`` hash: id -> content_hash, so a poll can
  tell new/changed/unchanged with one HMGET instead of fetching documents.
- ``source:{id}:index`` and ``feed:{name}:index``: zsets id -> published, newest = highest.
- ``feed:{name}:version``: bumped on every change to the feed's items; keys the render cache.
  An ingest batch (``upsert(..., announce=False)``) does not bump it per article: each write
  adds the feed to ``feeds:moved`` inside its own MULTI, and :meth:`Store.announce_moved` bumps
  each moved feed once and announces it once at the end of the batch (an ingest burst of 10,000
  articles used to re-render a feed 10,001 times). The set is in Redis, written with the
  articles, so a worker that dies mid-batch leaves it for the next drain to announce.
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

Change log (service/store/changelog.py): every write here that creates, changes or removes an
article, or moves it in or out of a feed, queues its change-log entry inside its own MULTI.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.clock import utcnow
from service.config import Settings
from service.errors import WriteConflict
from service.models import Article, Revision, SourceRef, UpsertOutcome
from service.store import dedup
from service.store.changelog import ChangedPart, ChangeKind, RemovalReason, record_into, record_written_into
from service.store.seen_entries import SeenEntries
from service.store.source_state import SourceStates
from service.store.upsert import BatchWrite, Seen, decide_upsert, plan_batch

log = logging.getLogger(__name__)

FUZZY_CANDIDATES = 500
MAX_UPSERT_TRIES = 50
"""Optimistic tries of one upsert; past them :class:`WriteConflict` leaves the caller to retry later."""
BATCH_CHUNK = 200
"""Articles one batch transaction decides and writes together (an ingest entry is one poll's)."""
BATCH_TRIES = 3
"""Optimistic tries of a whole chunk before its articles go one at a time."""


class Store:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings
        self.sources = SourceStates(redis)
        """Source state, the schedule and the disabled set."""
        self.seen_entries = SeenEntries(redis)

    # -- articles ---------------------------------------------------------------------------

    async def known_hashes(self, article_ids: Sequence[str]) -> list[str | None]:
        if not article_ids:
            return []
        values = await self.redis.hmget(keys.CONTENT_HASHES, list(article_ids))
        return [v.decode() if v is not None else None for v in values]

    async def upsert(self, incoming: Article, now: datetime, *, announce: bool = True) -> UpsertOutcome:
        """Store one article. ``announce=False`` (ingest batches): feeds it moves are marked, and
        their versions bumped and announced by :meth:`announce_moved` once per batch."""
        key = keys.article(incoming.id)
        feeds = self.settings.feeds_of_source(incoming.source_id)
        url_key = _url_key(incoming.url)
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
                            return await self._merge(pipe, owner, incoming, now, announce)
                    outcome, stored = decide_upsert(old, incoming, now)
                    if outcome is UpsertOutcome.UNCHANGED:
                        await pipe.unwatch()
                        return outcome
                    stale_url_key = _url_key(old.url) if old is not None and old.url != stored.url else None
                    if stale_url_key is not None and (await pipe.get(stale_url_key) or b"").decode() != stored.id:
                        stale_url_key = None
                    # -- change log: an update that gives a stored article another's URL merges it
                    if old is not None and url_key and old.url != stored.url:
                        owner = await self._owner_of(pipe, stored, url_key, False)
                        if owner is not None:
                            return await self._absorb(pipe, old, owner, now, stored.content_hash, announce)
                    # -- end change log
                    pipe.multi()
                    self._write(pipe, stored, feeds, now, announce)
                    record_into(
                        pipe,
                        self.settings,
                        stored.id,
                        ChangeKind.CREATED if old is None else ChangeKind.UPDATED,
                        now,
                        article=stored,
                        changed=None if old is None else ChangedPart.CONTENT,
                    )
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

    async def upsert_many(
        self,
        incoming: Sequence[Article],
        now: datetime,
        *,
        announce: bool = True,
        documents: Sequence[bytes] | None = None,
    ) -> list[UpsertOutcome]:
        """Store a batch (an ingest entry's articles); the outcomes, in order.

        The same result as :meth:`upsert` of each in turn, in a few round trips per chunk: WATCH
        every key the decisions read, read them with one MGET, decide (:func:`plan_batch`) and
        write all in one MULTI, change-log entries included. A concurrent writer touching any of
        those keys restarts the chunk; after ``BATCH_TRIES`` lost races, and for what the plan
        leaves to the one-article path (dedup, URL moves, repeats), :meth:`upsert` takes over.

        ``documents``, when given, are the incoming articles' :func:`document` bytes, already
        made: a new article is stored as them instead of being serialised again.
        """
        outcomes: list[UpsertOutcome] = []
        for start in range(0, len(incoming), BATCH_CHUNK):
            end = start + BATCH_CHUNK
            chunk_documents = documents[start:end] if documents is not None else None
            outcomes += await self._upsert_chunk(incoming[start:end], now, announce, chunk_documents)
        return outcomes

    async def _upsert_chunk(
        self, chunk: Sequence[Article], now: datetime, announce: bool, documents: Sequence[bytes] | None
    ) -> list[UpsertOutcome]:
        if self.settings.dedup.fuzzy_titles:  # candidates come from a range read: one at a time
            return [await self.upsert(article, now, announce=announce) for article in chunk]
        url_keys = [_url_key(a.url) for a in chunk]
        watched = [
            *(keys.article(a.id) for a in chunk),
            *(keys.alias(a.id) for a in chunk),
            *(k for k in url_keys if k is not None),
        ]
        plan = None
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(BATCH_TRIES):
                try:
                    await pipe.watch(*watched)
                    seen = _seen(await pipe.mget(watched), url_keys)
                    plan = plan_batch(chunk, seen, now)
                    if not plan.writes:
                        await pipe.unwatch()
                        break
                    pipe.multi()
                    self._write_batch(pipe, plan.writes, _documents_of(plan.writes, chunk, documents), now, announce)
                    await pipe.execute()
                    break
                except WatchError:
                    plan = None
                    continue
        if plan is None:  # lost every race: one at a time, each with its own tries
            return [await self.upsert(article, now, announce=announce) for article in chunk]
        outcomes = {write.index: write.outcome for write in plan.writes}
        outcomes.update((index, UpsertOutcome.UNCHANGED) for index in plan.unchanged)
        for index in plan.one_by_one:
            outcomes[index] = await self.upsert(chunk[index], now, announce=announce)
        return [outcomes[index] for index in range(len(chunk))]

    def _write_batch(
        self, pipe: Redis, writes: Sequence[BatchWrite], documents: Sequence[bytes], now: datetime, announce: bool
    ) -> None:
        """Queue what :meth:`_write`, the change-log entry, the revision and the URL claim of each
        write would, grouped into one command per key (a batch is hundreds of commands otherwise).
        ``documents`` are the writes' stored documents, in order.

        The same writes in another order, and equivalent: no two writes share an id or a URL key
        (:func:`plan_batch`), and the change-log script, queued after them all, reads only each
        id's own membership, which the batch set before it either way.
        """
        strings: dict[str, str | bytes] = {}
        hashes: dict[str, str] = {}
        titles: dict[str, str] = {}
        changed_at: dict[str, float] = {}
        scores: dict[str, float] = {}
        sources: dict[str, dict[str, float]] = {}
        feeds: dict[str, dict[str, float]] = {}
        moves: Counter[str] = Counter()
        feeds_of = {
            source_id: self.settings.feeds_of_source(source_id) for source_id in {w.stored.source_id for w in writes}
        }
        for write, stored_document in zip(writes, documents, strict=True):
            article = write.stored
            score = article.published.timestamp()
            strings[keys.article(article.id)] = stored_document
            if write.claim_url is not None:
                strings[write.claim_url] = article.id
            hashes[article.id] = article.content_hash
            titles[article.id] = f"{article.source_id}\t{dedup.title_key(article.title)}"
            changed_at[article.id] = now.timestamp()
            scores[article.id] = score
            sources.setdefault(keys.source_index(article.source_id), {})[article.id] = score
            for feed in feeds_of[article.source_id]:
                feeds.setdefault(feed, {})[article.id] = score
                moves[feed] += 1
        pipe.mset(strings)
        pipe.hset(keys.CONTENT_HASHES, mapping=hashes)
        for index, members in sources.items():
            pipe.zadd(index, members)
        pipe.zadd(keys.CHANGES, changed_at)
        pipe.zadd(keys.RECENT, scores)
        pipe.hset(keys.TITLES, mapping=titles)
        for feed, members in feeds.items():
            pipe.zadd(keys.feed_index(feed), members)
            for _ in range(moves[feed] if announce else 1):  # announced: one bump per article, as singly
                self._moved(pipe, feed, announce)
        record_written_into(
            pipe,
            self.settings,
            [(w.stored, None if w.old is None else ChangedPart.CONTENT) for w in writes],
            now,
        )
        for write in writes:
            if write.old is not None:
                self._keep_revision(pipe, write.old, now)

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

    async def _merge(
        self, pipe: Redis, owner: Article, incoming: Article, now: datetime, announce: bool = True
    ) -> UpsertOutcome:
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
                self._moved(pipe, feed, announce)
        self._record_owner(pipe, owner, merged, now)
        await pipe.execute()
        return UpsertOutcome.MERGED if merged is not None else UpsertOutcome.UNCHANGED

    def _record_owner(self, pipe: Redis, owner: Article, merged: Article | None, now: datetime) -> None:
        """The change-log entry of an article another was merged into: provenance, or feeds only."""
        changed = ChangedPart.SOURCES if merged else ChangedPart.FEEDS
        record_into(pipe, self.settings, owner.id, ChangeKind.UPDATED, now, article=merged or owner, changed=changed)

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

    def _moved(self, pipe: Redis, feed: str, announce: bool = True) -> None:
        """Queue the feed's version bump and change announcement, or (a batch) mark it moved."""
        if announce:
            pipe.incr(keys.feed_version(feed))
            pipe.publish(self.changes_channel, feed)
        else:
            pipe.sadd(keys.FEEDS_MOVED, feed)

    async def announce_moved(self) -> list[str]:
        """Bump the version of every feed marked moved, once, and announce each once.

        A write that marked a feed committed before the SMEMBERS here (the mark is in its MULTI),
        so the bump after it covers that write; a mark added after the read stays for the next
        call. Returns the feeds announced.
        """
        moved = sorted(member.decode() for member in await self.redis.smembers(keys.FEEDS_MOVED))
        if not moved:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(keys.FEEDS_MOVED, *moved)
            for feed in moved:
                self._moved(pipe, feed)
            await pipe.execute()
        return moved

    def _write(self, pipe: Redis, article: Article, feeds: Iterable[str], now: datetime, announce: bool = True) -> None:
        score = article.published.timestamp()
        pipe.set(keys.article(article.id), document(article))
        pipe.hset(keys.CONTENT_HASHES, article.id, article.content_hash)
        pipe.zadd(keys.source_index(article.source_id), {article.id: score})
        pipe.zadd(keys.CHANGES, {article.id: now.timestamp()})
        pipe.zadd(keys.RECENT, {article.id: score})
        pipe.hset(keys.TITLES, article.id, f"{article.source_id}\t{dedup.title_key(article.title)}")
        for feed in feeds:
            pipe.zadd(keys.feed_index(feed), {article.id: score})
            self._moved(pipe, feed, announce)

    # -- removals, each with its change-log entries (service/store/changelog.py) -------------

    async def trim_source(self, source_id: str, now: datetime | None = None, *, announce: bool = True) -> int:
        """Apply retention: keep the newest ``retention_per_source`` articles of the source."""
        return await self._drop_from_source(
            source_id, self.settings.storage.retention_per_source, RemovalReason.RETENTION, now or utcnow(), announce
        )

    async def remove_source_articles(
        self, source_id: str, now: datetime, reason: RemovalReason = RemovalReason.REMOVED
    ) -> int:
        """Remove every article the source owns; others' articles it carried only leave its indexes."""
        return await self._drop_from_source(source_id, 0, reason, now)

    async def _drop_from_source(
        self, source_id: str, keep: int, reason: RemovalReason, now: datetime, announce: bool = True
    ) -> int:
        """Drop all but the newest ``keep`` entries of the source's index.

        The documents are WATCHed, so a concurrent write to one of them (or another trim) restarts
        the drop: each removal commits, and is logged, exactly once.
        """
        index = keys.source_index(source_id)
        feeds = self.settings.feeds_of_source(source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    excess = await self.redis.zcard(index) - keep
                    if excess <= 0:
                        return 0
                    listed = [i.decode() for i in await self.redis.zrange(index, 0, excess - 1)]
                    await pipe.watch(*(keys.article(i) for i in listed))
                    docs = dict(zip(listed, await pipe.mget([keys.article(i) for i in listed]), strict=True))
                    parsed = {i: Article.model_validate_json(raw) for i, raw in docs.items() if raw}
                    # Articles another source owns (merged copies) only leave this source's indexes.
                    foreign = {i: a for i, a in parsed.items() if a.source_id != source_id}
                    doomed = [a for i, a in parsed.items() if i not in foreign]
                    url_keys = await self._owned_url_keys(pipe, doomed)
                    pipe.multi()
                    pipe.zrem(index, *listed)
                    for article_id, article in foreign.items():
                        still_shown = {
                            f
                            for ref in article.sources
                            if ref.id != source_id
                            for f in self.settings.feeds_of_source(ref.id)
                        }
                        still_shown.update(self.settings.feeds_of_source(article.source_id))
                        for feed in feeds:
                            if feed not in still_shown:
                                pipe.zrem(keys.feed_index(feed), article_id)
                        record_into(
                            pipe,
                            self.settings,
                            article_id,
                            ChangeKind.UPDATED,
                            now,
                            article=article,
                            changed=ChangedPart.FEEDS,
                        )
                    for article in doomed:
                        self._delete_into(pipe, article, announce)
                        record_into(pipe, self.settings, article.id, ChangeKind.REMOVED, now, reason=reason)
                    if url_keys:
                        pipe.delete(*url_keys)
                    if keep == 0:  # removed, not trimmed: the next poll stores what the feed still has
                        self.seen_entries.forget(pipe, source_id)
                    owned = [i for i in listed if i not in foreign]  # documents gone already included
                    for feed in feeds:
                        if owned:
                            pipe.zrem(keys.feed_index(feed), *owned)
                        self._moved(pipe, feed, announce)
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        log.info("%s removed %d articles of %s (%d deleted)", reason, len(listed), source_id, len(doomed))
        return len(listed)

    async def remove_article(
        self, article_id: str, now: datetime, reason: RemovalReason = RemovalReason.REMOVED
    ) -> bool:
        """Delete one stored article everywhere (operators); False when there is none."""
        key = keys.article(article_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        await pipe.unwatch()
                        return False
                    article = Article.model_validate_json(raw)
                    url_key = await self._owned_url_key(pipe, article)
                    pipe.multi()
                    self._delete_into(pipe, article)
                    if url_key:
                        pipe.delete(url_key)
                    self.seen_entries.forget(pipe, article.source_id)  # back at the next poll, as before
                    record_into(pipe, self.settings, article_id, ChangeKind.REMOVED, now, reason=reason)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def merge_articles(self, duplicate_id: str, owner_id: str, now: datetime) -> bool:
        """Merge a stored article into another as its duplicate (operators); False if either is gone."""
        if duplicate_id == owner_id:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    duplicate = await self._watched_article(pipe, duplicate_id)
                    owner = await self._watched_article(pipe, owner_id)
                    if duplicate is None or owner is None:
                        await pipe.unwatch()
                        return False
                    await self._absorb(pipe, duplicate, owner, now, duplicate.content_hash)
                    return True
                except WatchError:
                    continue

    async def _owned_url_keys(self, pipe: Redis, articles: Sequence[Article]) -> list[str]:
        """The URL-owner keys (now WATCHed) that name these articles, to delete with them: a
        retention trim must not leave one behind per article ever received."""
        wanted = {a.id: key for a in articles if (key := _url_key(a.url)) is not None}
        if not wanted:
            return []
        await pipe.watch(*wanted.values())
        owners = await pipe.mget(list(wanted.values()))
        return [
            key for (article_id, key), owner in zip(wanted.items(), owners, strict=True) if owner == article_id.encode()
        ]

    async def _owned_url_key(self, pipe: Redis, article: Article) -> str | None:
        """The article's URL-owner key (now WATCHed) when it names this article."""
        owned = await self._owned_url_keys(pipe, [article])
        return owned[0] if owned else None

    async def _absorb(
        self, pipe: Redis, duplicate: Article, owner: Article, now: datetime, duplicate_hash: str, announce: bool = True
    ) -> UpsertOutcome:
        """Replace a stored ``duplicate`` by ``owner``: the duplicate is deleted (a ``merged``
        tombstone), its sources join the owner's provenance and indexes, its id becomes an alias,
        so its source's next poll of it is a merged copy like any other."""
        refs = duplicate.sources or (self._own_ref(duplicate),)
        merged = dedup.add_sources(owner, refs, self._own_ref(owner))
        url_key = await self._owned_url_key(pipe, duplicate)
        holders = {duplicate.source_id, *(ref.id for ref in duplicate.sources)}
        score = owner.published.timestamp()
        pipe.multi()
        self._delete_into(pipe, duplicate, announce)
        if url_key and (owner.url is None or keys.url_owner(owner.url) != url_key):
            pipe.delete(url_key)
        elif url_key:
            pipe.set(url_key, owner.id)
        pipe.set(keys.alias(duplicate.id), owner.id)
        pipe.hset(keys.CONTENT_HASHES, duplicate.id, duplicate_hash)
        if merged is not None:
            pipe.set(keys.article(owner.id), merged.model_dump_json())
            pipe.zadd(keys.CHANGES, {owner.id: now.timestamp()})
        for source_id in holders:
            pipe.zadd(keys.source_index(source_id), {owner.id: score})
            for feed in self.settings.feeds_of_source(source_id):
                pipe.zadd(keys.feed_index(feed), {owner.id: score})
                self._moved(pipe, feed, announce)
        record_into(
            pipe,
            self.settings,
            duplicate.id,
            ChangeKind.REMOVED,
            now,
            reason=RemovalReason.MERGED,
            merged_into=owner.id,
        )
        self._record_owner(pipe, owner, merged, now)
        await pipe.execute()
        return UpsertOutcome.MERGED

    def _delete_into(self, pipe: Redis, article: Article, announce: bool = True) -> None:
        """Queue the deletion of ``article`` from every index that can hold it."""
        holders = {article.source_id, *(ref.id for ref in article.sources)}
        for source_id in holders:
            pipe.zrem(keys.source_index(source_id), article.id)
        for feed in {f for source_id in holders for f in self.settings.feeds_of_source(source_id)}:
            pipe.zrem(keys.feed_index(feed), article.id)
            self._moved(pipe, feed, announce)
        pipe.hdel(keys.CONTENT_HASHES, article.id)
        pipe.zrem(keys.CHANGES, article.id)
        pipe.zrem(keys.RECENT, article.id)
        pipe.hdel(keys.TITLES, article.id)
        pipe.delete(keys.article(article.id), keys.revisions(article.id))

    # -- end removals -------------------------------------------------------------------------

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
                self._moved(pipe, feed.name)
                await pipe.execute()

    async def article_count(self, source_id: str) -> int:
        """Articles listed for the source (its own and the copies merged into others')."""
        return int(await self.redis.zcard(keys.source_index(source_id)))


def document(article: Article) -> bytes:
    """The article's stored JSON: ``model_dump_json()``'s bytes, not decoded to a str for the
    client to encode again (a few KB each, every article stored)."""
    return Article.__pydantic_serializer__.to_json(article)


def _documents_of(
    writes: Sequence[BatchWrite], chunk: Sequence[Article], documents: Sequence[bytes] | None
) -> list[bytes]:
    """The document of each write: the one given for its incoming article when it stores that
    article as it came (a new one), else its serialisation."""
    return [
        documents[write.index]
        if documents is not None and write.stored is chunk[write.index]
        else document(write.stored)
        for write in writes
    ]


def _url_key(url: str | None) -> str | None:
    """The URL-owner key of an article with this URL, or None when the URL does not identify one."""
    return keys.url_owner(url) if url and dedup.identifies_article(url) else None


def _seen(values: Sequence[bytes | None], url_keys: Sequence[str | None]) -> list[Seen]:
    """The batch's MGET (documents, aliases, then the owners of the URL keys present) per article."""
    count = len(url_keys)
    owners = iter(values[2 * count :])
    seen = []
    for raw, alias, url_key in zip(values[:count], values[count : 2 * count], url_keys, strict=True):
        owner = next(owners) if url_key is not None else None
        seen.append(
            Seen(
                old=Article.model_validate_json(raw) if raw else None,
                alias=alias.decode() if alias is not None else None,
                url_key=url_key,
                url_owner=owner.decode() if owner is not None else None,
            )
        )
    return seen
