"""A fetched feed body → the articles one poll may queue: parse, keep the newest, normalise. Pure.

One function so a poll can run all of it in a parse thread (``Resources.off_loop``): parsing
and normalising are CPU-bound, and a 50,000-item body once held the event loop (every other
poll's I/O) for seconds. Only the newest ``Settings.items_per_poll`` entries are read at all
(:mod:`workers.parse.newest`); the rest would only have been deleted again by retention.

Given the keys of the entries the source's last read found stored unchanged
(:mod:`service.store.seen_entries`), the entries with one of those keys are passed over: the
same key gives the same article. The fast reader keys entries from their bytes and does not even
parse the known ones (:mod:`workers.parse.raw_keys`); elsewhere an entry's key
(:func:`entry_key`) covers the entry as parsed, and the known ones are not normalised. Either key
covers everything else reading and normalising depend on: the source's settings, the feed
(its URL, link and language), the sanitising, canonical and limits settings, and the reading and
normalising code itself (:func:`_code`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import metadata
from pathlib import Path

from service import models, urls
from service.config import Settings, SourceConfig
from service.models import Article, RejectedEntry
from service.store.seen_entries import KEY_BYTES, SeenEntry, article_digest
from workers import parse
from workers.normalise import authors, canonical, entry, limits, sanitise
from workers.normalise.entry import normalise_entries
from workers.parse import ParsedEntry, ParsedFeed, controls, parse_feed

__all__ = ["FeedRead", "entry_key", "read_feed"]


@dataclass(frozen=True)
class FeedRead:
    feed: ParsedFeed
    """What was parsed (its entries the newest ones only): publishing hints, dates for scheduling."""
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)
    """This stage's warnings; the parser's own are in ``feed.warnings``."""
    rejected: list[RejectedEntry] = field(default_factory=list)
    """Entries that failed normalising or validation: the poll keeps them as dead letters."""
    keys: dict[str, bytes] = field(default_factory=dict)
    """Article id -> the key of the entry it came from (empty when no keys were asked for)."""
    unchanged_keys: tuple[bytes, ...] = ()
    """The keys of the entries passed over as known (their articles are stored unchanged)."""
    records: dict[bytes, SeenEntry] = field(default_factory=dict)
    """Every key above -> what a poll records with it: its entry's date, its article."""


def read_feed(
    body: bytes,
    *,
    source: SourceConfig,
    settings: Settings,
    now: datetime,
    content_type: str | None,
    headers: Mapping[str, str],
    seen: Mapping[bytes, SeenEntry] | None = None,
) -> FeedRead:
    """Raises :class:`~service.errors.ParseError` when the body holds no feed.

    ``seen``: the keys of the entries the last read found stored unchanged, with their dates,
    which are passed over; None (a source's first read: nothing is stored yet) computes no keys.
    """
    salt = _salt(source, settings) if seen is not None else b""
    feed = parse_feed(
        body,
        source_id=source.id,
        url=source.url,  # not the redirect target: relative guids resolve against it, ids must not move
        content_type=content_type,
        headers=headers,
        default_tz=source.zone,
        max_entries=settings.items_per_poll,
        known={key: known.date for key, known in seen.items()} if seen is not None else None,
        key_salt=salt,
    )
    entry_keys: list[bytes] = []
    skip: set[int] = set()
    if seen is not None and feed.entry_keys is not None:  # keyed from their bytes: the known ones unread
        entry_keys = list(feed.entry_keys)
    elif seen is not None:
        context = hashlib.sha256(
            b"\0".join([salt, (feed.link or "").encode(), (feed.language or "").encode()])
        ).digest()
        entry_keys = [entry_key(context, item) for item in feed.entries]
        skip = {index for index, key in enumerate(entry_keys) if key in seen}
    done = normalise_entries(
        feed,
        source=source,
        now=now,
        sanitise=settings.sanitise,
        canonical=settings.canonical,
        limits=settings.limits,
        skip=skip,
    )
    warnings = done.warnings
    if feed.skipped:
        warnings.insert(
            0,
            f"{feed.skipped} older entries skipped: only the newest {settings.items_per_poll} are read per poll "
            "([limits] items_per_poll, default [storage] retention_per_source)",
        )
    if seen is None:
        return FeedRead(feed, done.articles, warnings, done.rejected)
    keys: dict[str, bytes] = {}
    for article, index in zip(done.articles, done.indexes, strict=True):
        keys.setdefault(article.id, entry_keys[index])  # an id's first entry: the one a poll keeps
    unchanged = [entry_keys[index] for index in sorted(skip)] + [known.key for known in feed.known]
    passed_over = {seen[key].article for key in unchanged}
    if passed_over and any(article_digest(article.id) in passed_over for article in done.articles):
        # An entry read gives the article of one passed over (a feed listing an id twice): which
        # of the two a poll keeps depends on their order, so read them all.
        return read_feed(
            body, source=source, settings=settings, now=now, content_type=content_type, headers=headers, seen={}
        )
    dates = {key: item.published or item.updated for key, item in zip(entry_keys, feed.entries, strict=True)}
    records = {key: SeenEntry(dates[key], article_digest(article_id)) for article_id, key in keys.items()}
    records.update((key, seen[key]) for key in unchanged)
    return FeedRead(feed, done.articles, warnings, done.rejected, keys, tuple(unchanged), records)


def entry_key(context: bytes, entry: ParsedEntry) -> bytes:
    """The key of ``entry`` read in ``context`` (the salt, the feed's link and language): equal
    keys, equal articles."""
    digest = hashlib.sha256(context)
    digest.update(ParsedEntry.__pydantic_serializer__.to_json(entry))
    return digest.digest()[:KEY_BYTES]


def _salt(source: SourceConfig, settings: Settings) -> bytes:
    """Everything but the document that reading and normalising an entry depend on."""
    parts = (
        _code(),
        source.model_dump_json().encode(),
        settings.sanitise.model_dump_json().encode(),
        settings.canonical.model_dump_json().encode(),
        settings.limits.model_dump_json().encode(),
    )
    return hashlib.sha256(b"\0".join(parts)).digest()


@cache
def _code() -> bytes:
    """The reading and normalising code: its modules' source and the versions of the libraries it
    relies on (a new release that reads or writes articles differently must not keep the old ones
    as unchanged)."""
    digest = hashlib.sha256()
    for module in (authors, canonical, entry, limits, sanitise, models, urls, controls):
        digest.update(Path(module.__file__ or "").read_bytes())
    for path in sorted(Path(parse.__file__ or "").parent.glob("*.py")):
        digest.update(path.read_bytes())
    for library in ("nh3", "lxml", "pydantic-core", "feedparser"):
        digest.update(metadata.version(library).encode())
    return digest.digest()
