"""Merged feeds: what the renderers receive, built purely from stored articles and config."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from service.config import FeedConfig, Settings
from service.models import Article, UtcDatetime

FORMATS = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}


class SourceInfo(BaseModel):
    """What a published item says about the source it came from."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    link: str


class MergedFeed(BaseModel):
    """Everything a renderer needs: feed metadata plus items newest first by ``published``."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    description: str
    home_url: str  # the HTML/listing URL of this merged feed
    self_urls: dict[str, str]  # format -> absolute URL of that rendering
    updated: UtcDatetime | None  # newest item `updated`; None for an empty feed
    items: tuple[Article, ...]
    sources: dict[str, SourceInfo]  # source id -> info, for every source an item names
    hub_url: str | None = None  # WebSub hub advertised with rel="hub"
    next_urls: dict[str, str] = {}  # format -> URL of the next (older) page; empty on the last page
    first_urls: dict[str, str] = {}  # format -> URL of the first page, set on every later page


def feed_urls(base_url: str, name: str, query: str = "") -> dict[str, str]:
    return {fmt: f"{base_url}/feeds/{name}.{fmt}{query}" for fmt in FORMATS}


def hub_url(base_url: str) -> str:
    return f"{base_url}/hub"


def build_merged_feed(
    settings: Settings,
    feed: FeedConfig,
    articles: Iterable[Article],
    *,
    limit: int | None = None,
    query: str = "",
    next_query: str | None = None,
    first_query: str | None = None,
) -> MergedFeed:
    """Order, cut to ``limit`` and stamp the feed-level update time (newest item ``updated``).

    ``query`` is the normalised query string of this page (part of its self links);
    ``next_query``/``first_query`` those of the older page and the first page, when they exist.
    """
    base_url = settings.server.base_url
    items = sorted(articles, key=lambda a: (a.published, a.id), reverse=True)[: limit or feed.limit]
    updated: datetime | None = max((a.updated for a in items), default=None)
    sources = {
        s.id: SourceInfo(id=s.id, name=s.display_name, link=s.url)
        for s in settings.sources
        if any(a.source_id == s.id for a in items)
    }
    return MergedFeed(
        name=feed.name,
        title=feed.title,
        description=feed.description or feed.title,
        home_url=f"{settings.server.base_url}/feeds/{feed.name}",
        self_urls=feed_urls(base_url, feed.name, query),
        updated=updated,
        items=tuple(items),
        sources=sources,
        hub_url=hub_url(base_url),
        next_urls=feed_urls(base_url, feed.name, next_query) if next_query is not None else {},
        first_urls=feed_urls(base_url, feed.name, first_query) if first_query is not None else {},
    )
