"""Parse stage: a fetched body → :class:`ParsedFeed`, one adapter per format.

Pure: bytes and headers in, data out; no I/O. Every failure leaves as :class:`ParseError`
carrying the source id, its cause chained.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo

from service.errors import ErrorKind, ParseError
from workers.parse.json_adapter import parse_json_feed
from workers.parse.types import KnownEntry, ParsedEntry, ParsedFeed
from workers.parse.xml_adapter import parse_xml_feed

__all__ = ["KnownEntry", "ParsedEntry", "ParsedFeed", "parse_feed"]

_BOM = "\ufeff".encode()
_WHITESPACE = b" \t\r\n"


def parse_feed(
    body: bytes,
    *,
    source_id: str,
    url: str,
    content_type: str | None,
    headers: Mapping[str, str] = {},
    default_tz: tzinfo = UTC,
    max_entries: int | None = None,
    fast: bool = True,
    known: Mapping[bytes, datetime | None] | None = None,
    key_salt: bytes = b"",
) -> ParsedFeed:
    """Parse a fetched body as JSON Feed or RSS/Atom, whichever it is.

    The body decides first (``{`` → JSON, ``<`` → XML) because servers mislabel feeds; the
    content type decides only for bodies that start with neither. ``default_tz`` reads dates
    that name no zone (pass the source's configured timezone); only the newest ``max_entries``
    entries are read, the rest skipped with one warning.

    RSS and Atom are read by :mod:`workers.parse.fast_xml` where it can vouch for giving what
    feedparser gives, else by feedparser (``fast=False``: always by feedparser). With ``known``
    (entry keys and their dates), the fast reader keys entries from their bytes salted with
    ``key_salt`` and passes over the known ones (:mod:`workers.parse.raw_keys`); JSON Feed items
    are never keyed so (``entry_keys`` None).
    """
    start = body.removeprefix(_BOM).lstrip(_WHITESPACE)[:1]
    if not start:
        raise ParseError(source_id, ErrorKind.NOT_A_FEED, "empty body")
    is_json = start == b"{" or (start != b"<" and "json" in (content_type or "").lower())
    try:
        if is_json:
            return parse_json_feed(body, url=url, source_id=source_id, default_tz=default_tz, max_entries=max_entries)
        if content_type and not any(key.lower() == "content-type" for key in headers):
            headers = {**headers, "content-type": content_type}
        return parse_xml_feed(
            body,
            url=url,
            headers=headers,
            source_id=source_id,
            default_tz=default_tz,
            max_entries=max_entries,
            fast=fast,
            known=known,
            key_salt=key_salt,
        )
    except ParseError:
        raise
    except Exception as exc:
        # A parser bug, not a bad feed: kind INTERNAL tells the operator (and tests) apart.
        raise ParseError(source_id, ErrorKind.INTERNAL, f"parser crashed: {type(exc).__name__}: {exc}") from exc
