"""What the partner API reads, as one caller (key scope) sees it: article listings, one article,
feeds, sources, and pages of the change log (docs/partners.md).

A *view* is the set of merged feeds a caller sees (``None``: every article). An article is in a
feed when the feed's index holds it and the feed's filters pass it, the rule the change log
applies at commit time (service/store/changelog.py), so listings and the log agree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from service import keys
from service.api.cursors import ArticleCursor, CursorSigner, query_digest
from service.api.problems import ApiProblem, bad_parameter
from service.api.schemas import (
    MAX_SCAN,
    ApiArticle,
    ArticleDetail,
    ArticlePage,
    ArticlesQuery,
    ChangePage,
    ChangeRecord,
    FeedInfo,
    SourceStatus,
)
from service.config import FeedConfig, SourceConfig
from service.feed_filter import feed_filter_matches, searchable_text, word_pattern
from service.feeds.merge import feed_urls
from service.models import Article
from service.store import listing
from service.store.articles import Store
from service.store.changelog import ChangeKind, ChangeLog, Position, SeenChange, as_seen_by

View = frozenset[str] | None
BATCH = 1001


@dataclass(frozen=True)
class ChangesRead:
    page: ChangePage
    last: Position  # the position the page ends at (its next_cursor)


class Reader:
    def __init__(self, store: Store, signer: CursorSigner):
        self.store = store
        self.settings = store.settings
        self.signer = signer
        self.log = ChangeLog(store.redis)

    # -- who sees what ---------------------------------------------------------------------

    def view(self, scope: Sequence[str], feed: str | None) -> View:
        """The feeds a request sees: its key's scope (empty: everything), narrowed by ``feed=``."""
        if feed is not None:
            if self.settings.feed(feed) is None:
                raise bad_parameter("feed", f"no merged feed named {feed!r}")
            if scope and feed not in scope:
                raise ApiProblem("forbidden", f"this key may not read the feed {feed!r}", parameter="feed")
            return frozenset({feed})
        return frozenset(scope) if scope else None

    async def feeds_showing(self, articles: Sequence[Article]) -> dict[str, tuple[str, ...]]:
        """Article id -> the merged feeds showing it now (index membership and filters)."""
        feeds = self.settings.feeds
        held = await listing.members(
            self.store.redis, [keys.feed_index(f.name) for f in feeds], [a.id for a in articles]
        )
        shown: dict[str, tuple[str, ...]] = {}
        for article in articles:
            text = searchable_text(article) if any(f.include_keywords or f.exclude_keywords for f in feeds) else ""
            shown[article.id] = tuple(
                f.name
                for f, ids in zip(feeds, held, strict=True)
                if article.id in ids and feed_filter_matches(f, article, text)
            )
        return shown

    @staticmethod
    def visible(view: View, feeds: tuple[str, ...]) -> bool:
        return view is None or not view.isdisjoint(feeds)

    # -- articles ---------------------------------------------------------------------------

    async def articles(self, query: ArticlesQuery, scope: Sequence[str]) -> ArticlePage:
        view = self.view(scope, query.feed)
        if query.ids is not None:
            return await self._by_ids(query, view)
        if query.source is not None and self.settings.source(query.source) is None:
            raise bad_parameter("source", f"no source named {query.source!r}")
        digest = query_digest(_normalised(query, view))
        if query.cursor is not None:
            cursor = self.signer.open_articles(query.cursor, digest)
            snapshot, after = cursor.snapshot, (cursor.score, cursor.id)
        else:
            snapshot, after = await self.log.head(), None  # read before the data: no gap to /changes
        items, end = await self._scan(query, view, after)
        next_cursor = self.signer.articles(ArticleCursor(end[0], end[1], snapshot, digest)) if end else None
        return ArticlePage(items=items, next_cursor=next_cursor, changes_cursor=self.signer.changes(snapshot))

    async def _by_ids(self, query: ArticlesQuery, view: View) -> ArticlePage:
        others = [n for n in ("source", "tag", "q", "language", "published_after", "published_before",
                              "updated_after", "cursor") if getattr(query, n) is not None]  # fmt: skip
        if others:
            raise bad_parameter(others[0], "cannot be combined with ids")
        ids = list(dict.fromkeys(query.ids.split(",") if query.ids else []))
        snapshot = await self.log.head()
        docs = await self.store.articles(ids)
        feeds = await self.feeds_showing(docs)
        items = [ApiArticle.of(a, feeds[a.id]) for a in docs if self.visible(view, feeds[a.id])]
        return ArticlePage(items=items, next_cursor=None, changes_cursor=self.signer.changes(snapshot))

    async def _scan(
        self, query: ArticlesQuery, view: View, after: tuple[float, str] | None
    ) -> tuple[list[ApiArticle], tuple[float, str] | None]:
        """The page's items and the position after it (None on the last page); at most
        ``MAX_SCAN`` index entries are examined, so a sparse filter never makes one request unbounded."""
        if query.feed is not None:
            index = keys.feed_index(query.feed)
        elif query.source is not None:
            index = keys.source_index(query.source)
        else:
            index = keys.RECENT
        check_source = query.source is not None and query.feed is not None
        bounds = {
            "newer_than": query.published_after.timestamp() if query.published_after else None,
            "older_than": query.published_before.timestamp() if query.published_before else None,
        }
        items: list[ApiArticle] = []
        position = after
        scanned = 0
        while True:
            rows = await listing.index_page(self.store.redis, index, position, BATCH, **bounds)
            docs = {a.id: a for a in await self.store.articles([i for i, _ in rows])}
            feeds = await self.feeds_showing(list(docs.values()))
            carried = (
                (await listing.members(self.store.redis, [keys.source_index(query.source)], list(docs)))[0]
                if check_source and query.source
                else None
            )
            for article_id, score in rows:
                if len(items) == query.limit:
                    return items, position
                position = (score, article_id)
                article = docs.get(article_id)
                if (
                    article is not None
                    and self.visible(view, feeds[article_id])
                    and (carried is None or article_id in carried)
                    and self._matches(query, article)
                ):
                    items.append(ApiArticle.of(article, feeds[article_id]))
            scanned += len(rows)
            if len(rows) < BATCH:
                return items, None
            if scanned >= MAX_SCAN:
                return items, position

    def _matches(self, query: ArticlesQuery, article: Article) -> bool:
        if query.updated_after is not None and article.updated <= query.updated_after:
            return False
        if query.language is not None:
            language, wanted = (article.language or "").lower(), query.language.lower()
            if language != wanted and not language.startswith(wanted + "-"):
                return False
        if query.tag is not None:
            source = self.settings.source(article.source_id)
            tags = {t.lower() for t in article.tags} | {t.lower() for t in (source.tags if source else ())}
            if query.tag.strip().lower() not in tags:
                return False
        if query.q is not None:
            text = searchable_text(article)
            if not all(word_pattern(word).search(text) for word in query.q.lower().split()):
                return False
        return True

    async def article(self, article_id: str, scope: Sequence[str]) -> ArticleDetail:
        found = await self.store.article(article_id)
        feeds = (await self.feeds_showing([found]))[article_id] if found else ()
        if found is None or not self.visible(self.view(scope, None), feeds):
            raise ApiProblem("not-found", f"no article {article_id}")
        revisions = await self.store.revisions(article_id)
        return ArticleDetail(**ApiArticle.of(found, feeds).model_dump(), revisions=tuple(revisions))

    # -- feeds and sources --------------------------------------------------------------------

    def feed_infos(self, scope: Sequence[str]) -> list[FeedInfo]:
        return [self._feed_info(f) for f in self.settings.feeds if not scope or f.name in scope]

    def feed_info(self, name: str, scope: Sequence[str]) -> FeedInfo:
        feed = self.settings.feed(name)
        if feed is None or (scope and name not in scope):
            raise ApiProblem("not-found", f"no feed named {name!r}")
        return self._feed_info(feed)

    def _feed_info(self, feed: FeedConfig) -> FeedInfo:
        sources = self.settings.feed_source_ids(feed)
        min_date = feed.min_date.isoformat() if feed.min_date is not None else None
        definition = {
            "sources": sorted(sources),
            "include": feed.include_keywords,
            "exclude": feed.exclude_keywords,
            "languages": feed.languages,
            "min_date": min_date,
        }
        return FeedInfo(
            name=feed.name,
            title=feed.title,
            description=feed.description,
            sources=sources,
            include_keywords=feed.include_keywords,
            exclude_keywords=feed.exclude_keywords,
            languages=feed.languages,
            min_date=min_date,
            definition=hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16],
            urls=feed_urls(self.settings.server.base_url, feed.name),
        )

    def _sources_in(self, scope: Sequence[str]) -> list[SourceConfig]:
        if not scope:
            return list(self.settings.sources)
        wanted = {s for f in self.settings.feeds if f.name in scope for s in self.settings.feed_source_ids(f)}
        return [s for s in self.settings.sources if s.id in wanted]

    async def sources(self, scope: Sequence[str]) -> list[SourceStatus]:
        return [await self._status(s) for s in self._sources_in(scope)]

    async def source(self, source_id: str, scope: Sequence[str]) -> SourceStatus:
        found = next((s for s in self._sources_in(scope) if s.id == source_id), None)
        if found is None:
            raise ApiProblem("not-found", f"no source named {source_id!r}")
        return await self._status(found)

    async def _status(self, source: SourceConfig) -> SourceStatus:
        state = await self.store.sources.get(source.id)
        return SourceStatus(
            id=source.id,
            name=source.display_name,
            url=source.url,
            kind=source.kind,
            tags=source.tags,
            feeds=self.settings.feeds_of_source(source.id),
            articles=await self.store.article_count(source.id),
            last_poll=state.last_poll,
            last_success=state.last_success,
            next_poll=state.next_poll,
            healthy=state.last_poll is not None and state.last_error is None,
            last_error_kind=state.last_error_kind if state.last_error else None,
            consecutive_failures=state.consecutive_failures,
            disabled=state.disabled,
        )

    # -- the change log ------------------------------------------------------------------------

    async def start_of_log(self, cursor: str | None) -> Position:
        """Where a read of the log starts: after the cursor's position, else the oldest record
        kept; 410 when records after the cursor were removed by retention."""
        horizon = await self.log.horizon()
        if cursor is None:
            return horizon
        position = self.signer.open_changes(cursor)
        if position < horizon:
            days = self.settings.api.changelog_retention_days
            raise ApiProblem(
                "cursor-expired",
                f"records after this cursor were removed (kept {days:g} days): take a new snapshot with "
                "GET /api/v1/articles and follow /api/v1/changes from its changes_cursor",
                parameter="cursor",
            )
        return position

    async def changes(self, start: Position, view: View, limit: int) -> ChangesRead:
        records: list[SeenChange] = []
        last = start
        scanned = 0
        more = False
        while not more:
            entries = await self.log.read(last, min(BATCH, limit + 1))
            for entry in entries:
                if len(records) == limit or scanned >= MAX_SCAN:
                    more = True
                    break
                last = entry.position
                scanned += 1
                seen = as_seen_by(entry, view)
                if seen is not None:
                    records.append(seen)
            if len(entries) < min(BATCH, limit + 1):
                break
        current = {
            a.id: a
            for a in await self.store.articles(
                list({s.entry.article_id for s in records if s.kind is not ChangeKind.REMOVED})
            )
        }
        feeds = await self.feeds_showing(list(current.values()))
        changes = [
            ChangeRecord(
                cursor=self.signer.changes(s.entry.position),
                kind=s.kind,
                id=s.entry.article_id,
                at=s.entry.at,
                reason=s.reason,
                merged_into=s.entry.merged_into if s.kind is ChangeKind.REMOVED else None,
                changed=s.entry.changed if s.kind is ChangeKind.UPDATED else None,
                content_hash=s.entry.content_hash if s.kind is not ChangeKind.REMOVED else None,
                article=ApiArticle.of(current[s.entry.article_id], feeds[s.entry.article_id])
                if s.kind is not ChangeKind.REMOVED and s.entry.article_id in current
                else None,
            )
            for s in records
        ]
        page = ChangePage(
            changes=changes,
            next_cursor=self.signer.changes(last),
            more=more,
            retention_seconds=int(self.settings.api.changelog_retention_days * 86400),
        )
        return ChangesRead(page, last)


def _normalised(query: ArticlesQuery, view: View) -> str:
    """The question a listing answers (not its page size or position): what its cursors are bound to."""
    fields = query.model_dump(mode="json", exclude={"limit", "cursor"})
    return json.dumps({"q": fields, "view": sorted(view) if view is not None else None}, sort_keys=True)
