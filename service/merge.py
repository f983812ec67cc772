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


def feed_urls(base_url: str, name: str) -> dict[str, str]:
    return {fmt: f"{base_url}/feeds/{name}.{fmt}" for fmt in FORMATS}


def build_merged_feed(settings: Settings, feed: FeedConfig, articles: Iterable[Article]) -> MergedFeed:
    """Order, cut to ``limit`` and stamp the feed-level update time (newest item ``updated``)."""
    items = sorted(articles, key=lambda a: (a.published, a.id), reverse=True)[: feed.limit]
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
        self_urls=feed_urls(settings.server.base_url, feed.name),
        updated=updated,
        items=tuple(items),
        sources=sources,
    )
