"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser, adapted to :class:`ParsedFeed`.

Relative references resolve by the rule in :mod:`workers.parse.bases` (an RSS item's against the
channel's link, an Atom entry's against the feed URL, guids always against the feed URL).
feedparser cannot do that alone: it resolves every reference against the one base it is given
and keeps no trace of the reference. It is given a sentinel base instead (:func:`_sentinel`), so
each value it resolved still says what the document wrote (:func:`_relative`), and that is
resolved here against the base the rule names. HTML in summaries and content is resolved here
too, once the base is known, exactly as feedparser's own resolver would
(:mod:`workers.parse.html_links`). feedparser is told not to sanitise: sanitising is a later
stage of ours, done once for every format.

Things feedparser does that this module works around:

- Given ``bytes``, ``feedparser.parse`` first tries ``open(body)``: a body that happens to be a
  path would be read from disk. The body always goes in as a stream.
- It drops "unsafe" ``<!ENTITY`` declarations with a line-based regex that only looks before
  the first thing resembling an element (a comment can end that early) and lets expat parse
  the rest; so any DTD subset or entity declaration is refused outright first, by
  :mod:`workers.parse.xml_safety`.
- ``*_parsed`` dates read every zone it does not know as UTC and roll impossible dates over
  (Feb 30 → Mar 1, ``+99:99`` accepted); raw strings go through
  :func:`workers.parse.dates.read_date` first and ``*_parsed`` is only the fallback for shapes
  it cannot read, never for a date it refused.
- ``FeedParserDict.get("updated")`` silently returns ``published``; dates are read with
  ``dict.get`` to bypass that.
- Relative ``<enclosure url>`` and Media RSS URLs are not resolved; they are resolved here, by
  the same rule.
- A UTF-16/32 body with a BOM but no XML declaration is read as UTF-8 and fails; such bodies
  are re-encoded as UTF-8 first.
- ``summary`` is a copy of ``content`` when the entry has no summary; only ``summary_detail``
  (present when the feed really had one) is used.

Known and not worked around: an RSS ``<guid>`` (isPermaLink) or Atom ``<id>`` that is a
relative reference is resolved against ``url``, so such guids change with the feed URL (kept that
way: ids derive from guids); a scheme-relative ``<link>//host/x</link>`` takes the feed URL's
scheme, not the channel link's; Media RSS ``<media:description>`` lands in ``summary``; an Atom
``<author>`` with a ``<uri>`` but no ``<email>`` inherits the previous author's email.
"""

from __future__ import annotations

import calendar
import html
import io
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import feedparser

from service.errors import ErrorKind, ParseError
from service.models import Author, Enclosure, Image
from workers.parse.bases import item_base, resolve
from workers.parse.dates import MAX_YEAR, MIN_YEAR, InvalidDate, read_date
from workers.parse.fast_xml import read_feed
from workers.parse.html_links import resolve_html_links
from workers.parse.newest import newest
from workers.parse.types import KnownEntry, ParsedEntry, ParsedFeed
from workers.parse.xml_safety import reject_unsafe_doctype

__all__ = ["parse_xml_feed"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MAX_HUBS = 10

# Complaints about headers, not about the document: the feed itself parsed fine.
SURVIVABLE_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)

_FEED_ROOT = re.compile(r"<(?:[\w.-]+:)?(?:rss|feed|rdf|channel)\b", re.IGNORECASE)
_HTML_ROOT = re.compile(r"<!doctype\s+html|<html\b", re.IGNORECASE)
_SNIFF_CHARS = 4096

# The base feedparser resolves against: a host that cannot exist (RFC 2606), directories deep
# enough to tell "x" from "../x" from "/x", names no feed writes. See _relative.
_SENTINEL_HOST = "relative.tributary.invalid"
_SENTINEL_DIRS = tuple(f"~tb{n}" for n in range(16))
_SENTINEL_FILE = "~tbf"
_WEB_SCHEMES = ("http", "https")


def parse_xml_feed(
    body: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    source_id: str | None = None,
    default_tz: tzinfo = UTC,
    max_entries: int | None = None,
    fast: bool = True,
    known: Mapping[bytes, datetime | None] | None = None,
    key_salt: bytes = b"",
) -> ParsedFeed:
    """Parse an RSS/Atom document fetched from ``url`` with response ``headers``.

    ``default_tz`` reads dates that name no zone; ``source_id`` labels errors (default ``url``);
    only the newest ``max_entries`` entries are read (:mod:`workers.parse.newest`).
    Raises :class:`ParseError` when no feed can be read: no entries and either no recognised
    format or a not-well-formed document without even a title. Broken entries are skipped with
    a warning instead, and the feed fails only if every entry is broken.

    ``fast`` reads the document with :mod:`workers.parse.fast_xml` where that can vouch for
    giving what feedparser gives, else with feedparser; False always uses feedparser.
    ``known`` and ``key_salt``: the fast reader keys the entries from their bytes and passes
    over those whose key is known (``entry_keys`` and ``known`` of the result).
    """
    error_id = source_id or url
    content_type = next((value for key, value in headers.items() if key.lower() == "content-type"), None)
    reject_unsafe_doctype(body, source_id=error_id, content_type=content_type)

    body = _undeclared_wide_to_utf8(body)
    response_headers = {key.lower(): value for key, value in headers.items()}
    response_headers["content-location"] = _sentinel(url)
    result = read_feed(body, response_headers, known=known, salt=key_salt) if fast else None
    if result is None:
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            resolve_relative_uris=False,  # HTML is resolved in read_entry, once its base is known
            sanitize_html=False,
        )

    warnings: list[str] = []
    bozo = result.get("bozo_exception") if result.get("bozo") else None
    broken = bozo is not None and not isinstance(bozo, SURVIVABLE_BOZO)
    if bozo is not None:
        lead = "not well-formed, parsed leniently" if broken else "accepted despite"
        warnings.append(f"{lead}: {type(bozo).__name__}: {bozo}")

    meta = result.get("feed") or {}
    title = meta.get("title") or None
    raw_entries = result.get("entries") or []
    version = result.get("version") or None
    if not raw_entries and (not version or (broken and not title)):
        kind, reason = _why_no_feed(_decoded_head(body), version=version, bozo=bozo if broken else None)
        raise ParseError(error_id, kind, reason) from bozo

    link = _absolute(meta.get("link"), url)
    hubs, self_url = _hub_links(meta.get("links") or (), url)
    base = item_base(version, url, link)
    raw_keys: list[bytes] | None = result.get("entry_keys")  # the fast reader's, with known keys
    entries: list[ParsedEntry] = []
    entry_keys: list[bytes] = []
    passed_over: list[KnownEntry] = []
    keep = newest(raw_entries, lambda raw: _rank_date(raw, default_tz), max_entries)
    for index in keep:
        raw = raw_entries[index]
        if isinstance(raw, KnownEntry):
            passed_over.append(raw)
            continue
        try:
            entries.append(read_entry(raw, base=base, feed_url=url, default_tz=default_tz))
        except Exception as exc:  # one bad entry must not cost the rest of the feed
            warnings.append(f"entry {index} skipped: {type(exc).__name__}: {exc}")
            continue
        if raw_keys is not None:
            entry_keys.append(raw_keys[index])
    if raw_entries and not entries and not passed_over:
        raise ParseError(error_id, ErrorKind.PARSE, f"no readable entries; first problem: {warnings[-1]}")

    return ParsedFeed(
        title=title,
        link=link,
        language=meta.get("language") or _detail_language(meta.get("title_detail")),
        version=version,
        ttl_minutes=_non_negative_int(meta.get("ttl")),
        update_period=_text(meta.get("sy_updateperiod")),
        update_frequency=_non_negative_int(meta.get("sy_updatefrequency")),
        hubs=hubs,
        self_url=self_url,
        entries=tuple(entries),
        entry_keys=tuple(entry_keys) if raw_keys is not None else None,
        known=tuple(passed_over),
        skipped=len(raw_entries) - len(keep),
        warnings=tuple(warnings),
    )


def _hub_links(links: Iterable[Mapping[str, Any]], url: str) -> tuple[tuple[str, ...], str | None]:
    """The feed-level ``rel="hub"`` targets (in order, once each) and the first ``rel="self"``,
    absolute against the feed URL (feedparser lists ``<atom:link>`` of RSS and Atom's ``<link>``)."""
    hubs: dict[str, None] = {}
    self_url = None
    for found in links:
        rel, href = found.get("rel"), _absolute(found.get("href"), url)
        if href is None:
            continue
        if rel == "hub" and len(hubs) < MAX_HUBS:
            hubs.setdefault(href)
        elif rel == "self" and self_url is None:
            self_url = href
    return tuple(hubs), self_url


def _decoded_head(body: bytes) -> str:
    """The start of the document as text, good enough to look for markup.

    UTF-16/32 are decoded properly; everything else is read as Latin-1, which keeps ASCII
    markup intact whatever the real (ASCII-compatible) encoding is.
    """
    chunk = body[: _SNIFF_CHARS * 4]
    for codec, marks in _WIDE_ENCODINGS:
        if chunk.startswith(marks):
            text = chunk.decode(codec, "replace")
            break
    else:
        text = chunk.decode("latin-1")
    return text[:_SNIFF_CHARS]


_BOM_ENCODINGS = (
    ("utf-32", (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")),  # before utf-16: same first bytes
    ("utf-16", (b"\xff\xfe", b"\xfe\xff")),
)
_WIDE_ENCODINGS = (
    _BOM_ENCODINGS[0],
    ("utf-32-le", (b"<\x00\x00\x00",)),
    ("utf-32-be", (b"\x00\x00\x00<",)),
    _BOM_ENCODINGS[1],
    ("utf-16-le", (b"<\x00",)),
    ("utf-16-be", (b"\x00<",)),
)


def _undeclared_wide_to_utf8(body: bytes) -> bytes:
    """UTF-16/32 with a BOM but no XML declaration, re-encoded as UTF-8.

    feedparser ignores the BOM when there is no declaration and reads such bodies as UTF-8.
    """
    for codec, marks in _BOM_ENCODINGS:
        if body.startswith(marks):
            try:
                text = body.decode(codec)
            except UnicodeDecodeError:
                return body
            return body if text.lstrip().startswith("<?xml") else text.encode("utf-8")
    return body


def _why_no_feed(text_head: str, *, version: str | None, bozo: Exception | None) -> tuple[ErrorKind, str]:
    looks_like_feed = bool(version) or bool(_FEED_ROOT.search(text_head))
    if _HTML_ROOT.search(text_head) and not looks_like_feed:
        return ErrorKind.NOT_A_FEED, "an HTML page, not a feed"
    if bozo is None:
        # Well-formed XML of another kind (OPML, sitemap, an unsupported format).
        kind = ErrorKind.PARSE if looks_like_feed else ErrorKind.NOT_A_FEED
        return kind, "no RSS or Atom feed found"
    # Broken XML might have been a feed; anything else is not even markup.
    is_markup = looks_like_feed or text_head.lstrip("\ufeff \t\r\n").startswith("<")
    kind = ErrorKind.PARSE if is_markup else ErrorKind.NOT_A_FEED
    return kind, f"not well-formed: {type(bozo).__name__}: {bozo}"


def read_entry(raw: Any, *, base: str, feed_url: str, default_tz: tzinfo) -> ParsedEntry:
    """One feedparser entry as a ParsedEntry, its references resolved against ``base`` and its
    guid against ``feed_url`` (:mod:`workers.parse.bases`). Whatever it raises costs that entry
    only: :func:`parse_xml_feed` skips it with a warning (tests replace it to fail on purpose)."""
    title_detail = raw.get("title_detail") or {}
    summary_detail = raw.get("summary_detail") or {}
    content = _pick_content(raw.get("content") or ())
    # feedparser leaves <enclosure> and Media RSS URLs as written and records no entry-level
    # xml:base; the base in scope where the title (else the summary, the content) began is the
    # entry's, and what feedparser left as written resolves against that.
    scope = next((d["base"] for d in (title_detail, summary_detail, content or {}) if d.get("base")), None)
    as_written = _absolute(scope, base) or base
    return ParsedEntry(
        guid=_guid(raw.get("id"), feed_url),
        link=_absolute(raw.get("link"), base),
        title=_text(raw.get("title"), strip=False),
        title_is_html=title_detail.get("type") in HTML_TYPES,
        summary=_as_html(summary_detail, base),
        content=_as_html(content, base),
        authors=_authors(raw.get("authors") or (), base),
        tags=tuple(t for t in (_text(tag.get("term") or tag.get("label")) for tag in raw.get("tags") or ()) if t),
        published=_date(raw, "published", default_tz) or _date(raw, "created", default_tz),
        updated=_date(raw, "updated", default_tz),
        enclosures=_enclosures(raw, base, as_written),
        image=_image(raw, base, as_written),
        language=(_detail_language(content) or _detail_language(summary_detail) or _detail_language(title_detail)),
    )


def _pick_content(contents: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    contents = [c for c in contents if c.get("value")]
    return next((c for c in contents if c.get("type") in HTML_TYPES), contents[0] if contents else None)


def _as_html(detail: Mapping[str, Any] | None, base: str) -> str | None:
    if not detail or not detail.get("value"):
        return None
    value: str = detail["value"]
    media_type = detail.get("type", "text/html")
    if media_type not in HTML_TYPES:
        return html.escape(value, quote=False)
    # The detail's base is the xml:base in scope where the element started, else the sentinel.
    return resolve_html_links(value, _absolute(detail.get("base"), base) or base, media_type)


def _authors(raw_authors: Iterable[Mapping[str, Any]], base: str) -> tuple[Author, ...]:
    authors: list[Author] = []
    for raw in raw_authors:
        author = Author(
            name=_text(raw.get("name")), email=_text(raw.get("email")), url=_absolute(raw.get("href"), base)
        )
        if (author.name or author.email or author.url) and author not in authors:
            authors.append(author)
    return tuple(authors)


def _date(raw: dict[str, Any], key: str, default_tz: tzinfo) -> datetime | None:
    # dict.get, not FeedParserDict.get: the latter answers "updated" with "published".
    text = dict.get(raw, key)
    if isinstance(text, str):
        try:
            if parsed := read_date(text, default_tz):
                return parsed
        except InvalidDate:
            return None  # refused: feedparser's reading of it would roll Feb 30 over to Mar 1
    struct = dict.get(raw, f"{key}_parsed")
    if callable(deferred := getattr(struct, "parsed", None)):  # the fast reader defers feedparser's parse
        struct = deferred()
    if struct and MIN_YEAR <= struct.tm_year <= MAX_YEAR:
        try:
            return datetime.fromtimestamp(calendar.timegm(struct), UTC)
        except (OverflowError, ValueError, OSError):
            return None
    return None


def _rank_date(raw: dict[str, Any] | KnownEntry, default_tz: tzinfo) -> datetime | None:
    return raw.date if isinstance(raw, KnownEntry) else _entry_date(raw, default_tz)


def _entry_date(raw: dict[str, Any], default_tz: tzinfo) -> datetime | None:
    """The date an entry ranks by when only the newest are read: published, else updated."""
    return _date(raw, "published", default_tz) or _date(raw, "created", default_tz) or _date(raw, "updated", default_tz)


def _enclosures(raw: Mapping[str, Any], base: str, as_written: str) -> tuple[Enclosure, ...]:
    found: dict[str, Enclosure] = {}
    candidates = [
        (link.get("href"), link.get("type"), link.get("length"))
        for link in raw.get("links") or ()
        if link.get("rel") == "enclosure"
    ]
    candidates += [(m.get("url"), m.get("type"), m.get("filesize")) for m in raw.get("media_content") or ()]
    for href, media_type, length in candidates:
        url = _absolute(href, base, as_written)
        if url and url not in found:
            found[url] = Enclosure(url=url, type=_text(media_type), length=_non_negative_int(length))
    return tuple(found.values())


def _image(raw: Mapping[str, Any], base: str, as_written: str) -> Image | None:
    candidates = [t.get("url") for t in raw.get("media_thumbnail") or ()]
    candidates += [
        m.get("url")
        for m in raw.get("media_content") or ()
        if m.get("medium") == "image" or str(m.get("type") or "").startswith("image/")
    ]
    candidates.append((raw.get("image") or {}).get("href"))
    for candidate in candidates:
        if url := _absolute(candidate, base, as_written):
            credits = raw.get("media_credit") or ()
            credit = _text(credits[0].get("content")) if credits and isinstance(credits[0], Mapping) else None
            return Image(url=url, credit=credit)
    return None


def _detail_language(detail: Mapping[str, Any] | None) -> str | None:
    return _text(detail.get("language")) if detail else None


def _sentinel(url: str) -> str:
    """The base feedparser is given in place of ``url``: absolute references in ``url``'s scheme
    are normalised by ``urljoin`` exactly as they were when ``url`` itself was the base."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    scheme = scheme if scheme in _WEB_SCHEMES else "https"
    return f"{scheme}://{_SENTINEL_HOST}/{'/'.join(_SENTINEL_DIRS)}/{_SENTINEL_FILE}"


@lru_cache(maxsize=256)  # the same bases come back for every entry
def _relative(value: str) -> str | None:
    """The relative reference feedparser resolved into ``value`` against :func:`_sentinel`, as an
    equivalent reference (dot segments already applied); None when ``value`` was not relative."""
    if _SENTINEL_HOST not in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.netloc != _SENTINEL_HOST:
        return None
    segments = parts.path.split("/")[1:]
    depth = 0  # how many sentinel directories the reference stayed in
    while depth < min(len(_SENTINEL_DIRS), len(segments) - 1) and segments[depth] == _SENTINEL_DIRS[depth]:
        depth += 1
    rest = "/".join(segments[depth:])
    if depth == 0:
        reference = parts.path  # "/x": an absolute path (or more "../" than any real base has)
    elif depth < len(_SENTINEL_DIRS):
        reference = "../" * (len(_SENTINEL_DIRS) - depth) + rest
    elif rest == _SENTINEL_FILE:
        reference = ""  # "?q", "#f": the base document itself
    else:
        reference = "./" + rest  # "./" keeps a first segment with a colon from reading as a scheme
    if parts.query:
        reference += "?" + parts.query
    if parts.fragment:
        reference += "#" + parts.fragment
    return reference


def _absolute(value: Any, base: str, as_written: str | None = None) -> str | None:
    """A URL of the document made absolute: what feedparser resolved against the sentinel
    (xml:base included) is resolved against ``base``; what it left as written, against
    ``as_written`` (the base in scope there; default ``base``)."""
    text = _text(value)
    if not text:
        return None
    relative = _relative(text)
    if relative is None:
        return resolve(as_written or base, text)
    return resolve(base, relative)


def _guid(value: Any, feed_url: str) -> str | None:
    """An entry's id as before the item-base rule: resolved against the feed URL when feedparser
    resolved it at all (a permalink guid, an Atom id), else exactly as written."""
    text = _text(value)
    if not text:
        return None
    relative = _relative(text)
    return text if relative is None else resolve(feed_url, relative) or text


def _text(value: Any, *, strip: bool = True) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if not stripped:
        return None
    return stripped if strip else value


def _non_negative_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
