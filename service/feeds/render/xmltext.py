"""How values are spelled in published feeds: safe text, dates, URIs and item ids.

Shared by all three renderers so that an item reads the same in RSS, Atom and JSON Feed:
the same cleaned text, the same id, the same link.
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from service.feeds.merge import MergedFeed, SourceInfo
from service.models import Article, Enclosure, SourceRef
from service.text import xml_safe
from service.urls import ascii_host

# What RFC 3986 lets appear literally in a URI; anything else gets percent-encoded. Brackets
# are only allowed around an IPv6 host, so they are kept in the authority and escaped after it.
_URI_OK = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*")
_URI_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]")
_AUTHORITY_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_AUTHORITY = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?)"  # scheme and userinfo
    r"(?P<host>\[[^\]/?#]*\]|[^:/?#]*)"  # an IPv6 literal or a registered name
    r"(?P<port>[^/?#]*)"
)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")

# RFC 6838 type/subtype with optional parameters (RFC 7231 §3.1.1.1), tokens as RFC 7230 has them.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*"'
_MEDIA_TYPE = re.compile(rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))*")
# Python's own extension table, not the host's /etc/mime.types: the same bytes on every machine.
_EXTENSION_TYPES = mimetypes.MimeTypes()

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

GENERATOR = "Tributary"
UNKNOWN_MEDIA_TYPE = "application/octet-stream"


def safe_uri(url: str) -> str:
    """``url`` as RFC 3986 spells it: a non-ASCII host in its IDNA form (§3.2.2), and everything
    else that may not appear literally (spaces, controls, non-ASCII, stray %) percent-encoded."""
    if _URI_OK.fullmatch(url) is not None and "%" not in url:
        return url
    url = xml_safe(url)
    authority = _AUTHORITY.match(url)
    if authority is None:
        return _URI_ESCAPE.sub(_percent, url)
    head = authority["head"] + ascii_host(authority["host"]) + authority["port"]
    return _AUTHORITY_ESCAPE.sub(_percent, head) + _URI_ESCAPE.sub(_percent, url[authority.end() :])


def absolute_uri(url: str | None) -> str | None:
    """``url`` made safe by :func:`safe_uri` if it names a scheme, else None: a relative
    reference in a feed has nothing to resolve against, so it is left out everywhere."""
    if not url:
        return None
    url = safe_uri(url)
    return url if _SCHEME.match(url) is not None else None


def web_uri(url: str | None) -> str | None:
    """:func:`absolute_uri` for what a reader follows or fetches (item links, enclosures, images,
    author pages): http(s) only, so a ``javascript:`` or ``data:`` URL stored by an older version
    never reaches a feed, whatever normalise let through then."""
    uri = absolute_uri(url)
    return uri if uri is not None and uri[:8].lower().startswith(("http://", "https://")) else None


def enclosure_type(enclosure: Enclosure) -> str | None:
    """The enclosure's media type if it is one, else the type its URL's extension names, else None.

    Feeds write ``type="mp3"`` or ``type="video"``; podcast apps need ``audio/mpeg``. Every format
    publishes this one answer (RSS and JSON Feed, which require a type, fall back to
    ``application/octet-stream``; Atom leaves the attribute out).
    """
    given = " ".join((enclosure.type or "").split())
    if _MEDIA_TYPE.fullmatch(given):
        return given
    try:
        path = urlsplit(enclosure.url).path
    except ValueError:
        return None
    guessed, _ = _EXTENSION_TYPES.guess_type(path, strict=True)
    return guessed


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        # A naive time would be read as server-local: output would depend on the host.
        raise ValueError(f"naive datetime {dt!r}: feed dates must be timezone-aware")
    return dt.astimezone(UTC)


def rfc822(dt: datetime) -> str:
    """RSS date, e.g. ``Tue, 19 Sep 2023 17:12:00 +0000``; English names whatever the locale."""
    dt = _utc(dt)
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} +0000"
    )


def rfc3339(dt: datetime) -> str:
    """Atom/JSON Feed date, e.g. ``2023-09-19T17:12:00Z``; microseconds kept when present."""
    return _utc(dt).isoformat()[:-6] + "Z"  # a UTC isoformat() always ends "+00:00"


def article_uri(article: Article) -> str:
    """The item id in every format: ``urn:uuid:`` + the stable 32-hex article id, dashed."""
    h = article.id  # the model guarantees 32 lowercase hex digits
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def article_source(feed: MergedFeed, article: Article) -> SourceInfo | SourceRef:
    """Where an item came from: the feed's source table, else the article's own provenance."""
    info = feed.sources.get(article.source_id)
    if info is not None:
        return info
    for ref in article.sources:
        if ref.id == article.source_id:
            return ref
    return SourceRef(id=article.source_id, name=article.source_id, first_seen=article.first_seen)


def paging_links(feed: MergedFeed, fmt: str) -> list[tuple[str, str]]:
    """(rel, href) of the discovery and RFC 5005 links besides ``self``, for the XML formats.

    ``next`` (paged feed) and ``prev-archive`` (archived feed) both name the older page: readers
    implement one or the other, and our cursor pages are stable either way.
    """
    links = []
    if feed.hub_url:
        links.append(("hub", feed.hub_url))
    if feed.first_urls:
        links.append(("first", feed.first_urls[fmt]))
    if feed.next_urls:
        links.append(("next", feed.next_urls[fmt]))
        links.append(("prev-archive", feed.next_urls[fmt]))
    return links
