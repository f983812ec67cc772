"""What the parse stage hands to normalise: one feed's data as the feed stated it.

These types never leave the worker side. Dates are already resolved to aware UTC (parsers call
:func:`workers.parse.dates.parse_date`), HTML is unsanitised, and URLs are absolute: in RSS and
Atom every one (links, enclosures, images, the links inside HTML) by the rule in
:mod:`workers.parse.bases`, in JSON Feed against the feed URL; everything else is left for
:mod:`workers.normalise.entry`.
"""

from __future__ import annotations

from service.models import Author, Enclosure, Frozen, Image, UtcDatetime


class ParsedEntry(Frozen):
    """One entry (RSS item, Atom entry, JSON Feed item) as the feed stated it."""

    guid: str | None = None
    link: str | None = None
    title: str | None = None
    title_is_html: bool = False
    summary: str | None = None
    """HTML."""
    content: str | None = None
    """HTML."""
    authors: tuple[Author, ...] = ()
    tags: tuple[str, ...] = ()
    published: UtcDatetime | None = None
    updated: UtcDatetime | None = None
    enclosures: tuple[Enclosure, ...] = ()
    image: Image | None = None
    language: str | None = None


class KnownEntry(Frozen):
    """An entry passed over unread: its key was among those the caller knew
    (:mod:`workers.parse.raw_keys`), so its article is stored unchanged."""

    key: bytes
    date: UtcDatetime | None = None
    """The date it ranks by (published, else updated), as recorded when it was last read."""


class ParsedFeed(Frozen):
    """A whole parsed document: feed-level metadata plus the entries that could be read."""

    title: str | None = None
    link: str | None = None
    language: str | None = None
    version: str | None = None
    """Format and version as feedparser names them: ``rss20``, ``atom10``, ``json11``…"""
    ttl_minutes: int | None = None
    update_period: str | None = None
    """``sy:updatePeriod`` (hourly, daily, weekly, monthly, yearly)."""
    update_frequency: int | None = None
    """``sy:updateFrequency``: updates per ``update_period``."""
    hubs: tuple[str, ...] = ()
    """WebSub hubs the document names, absolute, in document order: ``<atom:link rel="hub">`` in
    RSS, ``<link rel="hub">`` in Atom, ``hubs`` of type WebSub in JSON Feed."""
    self_url: str | None = None
    """The feed's own URL as it states it (``rel="self"``, JSON Feed ``feed_url``): the WebSub topic."""
    entries: tuple[ParsedEntry, ...] = ()
    entry_keys: tuple[bytes, ...] | None = None
    """The keys of ``entries`` from their bytes, in the same order (:mod:`workers.parse.raw_keys`);
    None where the reader gave none (no known keys asked for, or a document they cannot key)."""
    known: tuple[KnownEntry, ...] = ()
    """Entries passed over unread, their keys known (among the newest ``max_entries`` too)."""
    skipped: int = 0
    """Entries left unread: older than the newest ``max_entries`` the parser was asked for."""
    warnings: tuple[str, ...] = ()
    """One line per problem survived: a skipped entry, a bozo feed, a dropped member."""
