"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), validated by pydantic.

Validation is strict (no coercion: a number is not a title) but local: an item with a
wrong-typed member is skipped with a warning, a wrong-typed optional feed member is dropped
with a warning, and only an unusable ``version`` or ``items`` fails the whole feed.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from service.errors import ErrorKind, ParseError
from service.models import Author, Enclosure, Image
from service.urls import join_url
from workers.parse.dates import parse_date
from workers.parse.newest import newest
from workers.parse.types import ParsedEntry, ParsedFeed

__all__ = ["parse_json_feed"]

VERSIONS = {
    "https://jsonfeed.org/version/1": "json10",
    "https://jsonfeed.org/version/1.1": "json11",
}
_VERSION_PREFIX = "https://jsonfeed.org/version/"
_REQUIRED = ("version", "items")
WEBSUB_TYPES = frozenset({"websub", "pubsubhubbub"})
MAX_HUBS = 10


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class JsonAuthor(_Strict):
    name: str | None = None
    url: str | None = None
    avatar: str | None = None


class JsonAttachment(_Strict):
    url: str
    mime_type: str | None = None
    title: str | None = None
    size_in_bytes: int | float | None = None
    duration_in_seconds: int | float | None = None


class JsonItem(_Strict):
    id: str | int | float
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    summary: str | None = None
    image: str | None = None
    banner_image: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    author: JsonAuthor | None = None
    """JSON Feed 1.0; 1.1 deprecates it in favour of ``authors``."""
    authors: list[JsonAuthor] | None = None
    tags: list[str] | None = None
    language: str | None = None
    attachments: list[JsonAttachment] | None = None


class JsonHub(_Strict):
    type: str
    url: str


class JsonFeed(_Strict):
    version: str
    title: str | None = None
    home_page_url: str | None = None
    feed_url: str | None = None
    language: str | None = None
    author: JsonAuthor | None = None
    authors: list[JsonAuthor] | None = None
    hubs: list[JsonHub] | None = None
    items: list[Any]
    """Validated one by one (:class:`JsonItem`) so a bad item costs only itself."""


def parse_json_feed(
    body: bytes,
    *,
    url: str,
    source_id: str | None = None,
    default_tz: tzinfo = UTC,
    max_entries: int | None = None,
) -> ParsedFeed:
    """Parse a JSON Feed fetched from ``url``; relative URLs resolve against ``url``. Only the
    newest ``max_entries`` items are read (:mod:`workers.parse.newest`)."""
    error_id = source_id or url
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ParseError(error_id, ErrorKind.NOT_A_FEED, f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ParseError(error_id, ErrorKind.NOT_A_FEED, f"JSON top level is {type(data).__name__}, not an object")

    version = _version(data.get("version"), error_id)
    warnings: list[str] = []
    feed = _validate_feed(data, error_id, warnings)
    feed_authors = _authors(feed.authors or ([feed.author] if feed.author else []), url)

    entries: list[ParsedEntry] = []
    keep = newest(feed.items, lambda raw: _item_date(raw, default_tz), max_entries)
    for index in keep:
        raw = feed.items[index]
        try:
            item = JsonItem.model_validate(raw)
            entries.append(_entry(item, base=url, feed_authors=feed_authors, default_tz=default_tz))
        except ValidationError as exc:
            warnings.append(f"item {index} skipped: {_describe(exc)}")
        except ValueError as exc:
            warnings.append(f"item {index} skipped: {exc}")
    if feed.items and not entries:
        raise ParseError(error_id, ErrorKind.PARSE, f"no readable items; first problem: {warnings[0]}")

    return ParsedFeed(
        title=_text(feed.title),
        link=_absolute(feed.home_page_url, url),
        language=_text(feed.language),
        version=version,
        hubs=_hubs(feed.hubs or (), url),
        self_url=_absolute(feed.feed_url, url),
        entries=tuple(entries),
        skipped=len(feed.items) - len(keep),
        warnings=tuple(warnings),
    )


def _version(value: Any, error_id: str) -> str:
    if not isinstance(value, str) or "jsonfeed.org/version/" not in value.lower():
        raise ParseError(error_id, ErrorKind.NOT_A_FEED, f"JSON but not a JSON Feed (version {value!r})")
    normalised = value.strip().lower().rstrip("/").replace("http://", "https://", 1)
    if normalised not in VERSIONS:
        raise ParseError(error_id, ErrorKind.PARSE, f"unsupported JSON Feed version {value!r}")
    return VERSIONS[normalised]


def _validate_feed(data: dict[str, Any], error_id: str, warnings: list[str]) -> JsonFeed:
    try:
        return JsonFeed.model_validate(data)
    except ValidationError as exc:
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        if bad.intersection(_REQUIRED) or not bad:
            raise ParseError(error_id, ErrorKind.PARSE, f"invalid JSON Feed: {_describe(exc)}") from exc
        warnings.append(f"feed members dropped: {_describe(exc)}")
    try:
        return JsonFeed.model_validate({key: value for key, value in data.items() if key not in bad})
    except ValidationError as exc:  # pragma: no cover - dropping the bad members cannot fail
        raise ParseError(error_id, ErrorKind.PARSE, f"invalid JSON Feed: {_describe(exc)}") from exc


def _entry(item: JsonItem, *, base: str, feed_authors: tuple[Author, ...], default_tz: tzinfo) -> ParsedEntry:
    guid = str(item.id).strip()
    if not guid:
        # The spec: "any item without an id must be discarded".
        raise ValueError("item has an empty id")
    authors = _authors(item.authors or ([item.author] if item.author else []), base) or feed_authors
    content = item.content_html or (_escape(item.content_text) if item.content_text else None)
    image = _absolute(item.image, base) or _absolute(item.banner_image, base)
    return ParsedEntry(
        guid=guid,
        link=_absolute(item.url, base) or _absolute(item.external_url, base),
        title=_text(item.title),
        title_is_html=False,
        summary=_escape(item.summary) if item.summary and _text(item.summary) else None,
        content=content or None,
        authors=authors,
        tags=tuple(tag.strip() for tag in item.tags or () if tag.strip()),
        published=parse_date(item.date_published, default_tz) if item.date_published else None,
        updated=parse_date(item.date_modified, default_tz) if item.date_modified else None,
        enclosures=_enclosures(item.attachments or (), base),
        image=Image(url=image) if image else None,
        language=_text(item.language),
    )


def _hubs(hubs: Iterable[JsonHub], base: str) -> tuple[str, ...]:
    """The WebSub hubs (``type`` WebSub, or its old name PubSubHubbub), absolute, once each."""
    found: dict[str, None] = {}
    for hub in hubs:
        url = _absolute(hub.url, base)
        if url and hub.type.strip().lower() in WEBSUB_TYPES and len(found) < MAX_HUBS:
            found.setdefault(url)
    return tuple(found)


def _item_date(raw: Any, default_tz: tzinfo) -> datetime | None:
    """The date an item ranks by when only the newest are read, from the raw (unvalidated) item."""
    if not isinstance(raw, dict):
        return None
    text = raw.get("date_published") or raw.get("date_modified")
    return parse_date(text, default_tz) if isinstance(text, str) else None


def _authors(raw_authors: Iterable[JsonAuthor], base: str) -> tuple[Author, ...]:
    authors: list[Author] = []
    for raw in raw_authors:
        url = _absolute(raw.url, base)
        email = None
        if url and url.lower().startswith("mailto:"):
            email, url = url[len("mailto:") :], None
        author = Author(name=_text(raw.name), email=email, url=url)
        if (author.name or author.email or author.url) and author not in authors:
            authors.append(author)
    return tuple(authors)


def _enclosures(attachments: Iterable[JsonAttachment], base: str) -> tuple[Enclosure, ...]:
    found: dict[str, Enclosure] = {}
    for attachment in attachments:
        url = _absolute(attachment.url, base)
        if url and url not in found:
            size = attachment.size_in_bytes
            length = int(size) if size is not None and math.isfinite(size) and size >= 0 else None
            found[url] = Enclosure(url=url, type=_text(attachment.mime_type), length=length)
    return tuple(found.values())


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}" for error in exc.errors()
    )


def _escape(text: str) -> str:
    """JSON Feed's summary and content_text are plain text; downstream expects HTML."""
    return html.escape(text, quote=False)


def _absolute(value: str | None, base: str) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        return join_url(base, text)
    except ValueError:
        return None


def _text(value: str | None) -> str | None:
    return value.strip() or None if value else None
