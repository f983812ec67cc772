"""A fetched feed body → the articles one poll may queue: parse, keep the newest, normalise. Pure.

One function so a poll can run all of it in a parse thread (``Resources.off_loop``): parsing
and normalising are CPU-bound, and a 50,000-item body once held the event loop (every other
poll's I/O) for seconds. Only the newest ``Settings.items_per_poll`` entries are read at all
(:mod:`workers.parse.newest`); the rest would only have been deleted again by retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from service.config import Settings, SourceConfig
from service.models import Article, RejectedEntry
from workers.normalise.entry import normalise_entries
from workers.parse import ParsedFeed, parse_feed

__all__ = ["FeedRead", "read_feed"]


@dataclass(frozen=True)
class FeedRead:
    feed: ParsedFeed
    """What was parsed (its entries the newest ones only): publishing hints, dates for scheduling."""
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)
    """This stage's warnings; the parser's own are in ``feed.warnings``."""
    rejected: list[RejectedEntry] = field(default_factory=list)
    """Entries that failed normalising or validation: the poll keeps them as dead letters."""


def read_feed(
    body: bytes,
    *,
    source: SourceConfig,
    settings: Settings,
    now: datetime,
    content_type: str | None,
    headers: Mapping[str, str],
) -> FeedRead:
    """Raises :class:`~service.errors.ParseError` when the body holds no feed."""
    feed = parse_feed(
        body,
        source_id=source.id,
        url=source.url,  # not the redirect target: relative guids resolve against it, ids must not move
        content_type=content_type,
        headers=headers,
        default_tz=source.zone,
        max_entries=settings.items_per_poll,
    )
    done = normalise_entries(
        feed,
        source=source,
        now=now,
        sanitise=settings.sanitise,
        canonical=settings.canonical,
        limits=settings.limits,
    )
    warnings = done.warnings
    if feed.skipped:
        warnings.insert(
            0,
            f"{feed.skipped} older entries skipped: only the newest {settings.items_per_poll} are read per poll "
            "([limits] items_per_poll, default [storage] retention_per_source)",
        )
    return FeedRead(feed, done.articles, warnings, done.rejected)
