"""Find a site's feed from its address: the page itself if it is a feed, else the feeds its
``<link rel="alternate">`` names, else the common paths (``/feed``, ``/rss``, ``/atom.xml`` ...).

Every request goes through the workers' fetch (:func:`workers.fetch.client.fetch`: the SSRF
guard, timeouts, the body cap); at most :data:`MAX_CANDIDATES` addresses are tried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from lxml import etree
from lxml import html as lxml_html
from pydantic import ValidationError

from service.config import FetchConfig, Settings, SourceConfig
from service.errors import ConfigError, ErrorKind, ParseError, SourceError
from workers.fetch.client import FetchResult, fetch
from workers.parse import parse_feed

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json")
COMMON_PATHS = ("/feed", "/rss", "/atom.xml", "/feed.xml", "/index.xml", "/rss.xml")
MAX_CANDIDATES = 12
MAX_ID_CHARS = 64


class NoFeedFound(SourceError):
    """Neither the page nor anything it links or the common paths is a feed."""


@dataclass(frozen=True)
class Discovered:
    url: str
    title: str | None
    how: str
    """``the address itself``, ``<link rel="alternate">`` or ``common path``."""


def alternate_links(body: bytes, base_url: str) -> list[str]:
    """Feed URLs of the page's ``<link rel="alternate" type="…">``, absolute, in page order."""
    try:
        document = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    base = document.xpath("string(//base/@href)") or base_url
    found: list[str] = []
    for link in document.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        href = (link.get("href") or "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            url = urljoin(urljoin(base_url, str(base)), href)
            if urlsplit(url).scheme in ("http", "https") and url not in found:
                found.append(url)
    return found


def common_paths(url: str) -> list[str]:
    parts = urlsplit(url)
    root = f"{parts.scheme}://{parts.netloc}"
    return [root + path for path in COMMON_PATHS]


def _as_feed(result: FetchResult, url: str) -> str | None:
    """The feed's title ("" when it has none) when the body is a feed, else None."""
    try:
        parsed = parse_feed(
            result.body, source_id="discover", url=url, content_type=result.content_type, headers=result.headers
        )
    except ParseError:
        return None
    return parsed.title or ""


async def discover_feed(session: aiohttp.ClientSession, url: str, config: FetchConfig) -> Discovered:
    """The feed at or behind ``url``; raises :class:`NoFeedFound` (or the page's fetch error)."""
    page = await fetch(session, url, source_id="discover", config=config)
    title = _as_feed(page, page.url)
    if title is not None:
        return Discovered(page.url, title or None, "the address itself")
    tried = {page.url, url}
    candidates = [(u, '<link rel="alternate">') for u in alternate_links(page.body, page.url)]
    candidates += [(u, "common path") for u in common_paths(page.url)]
    for candidate, how in candidates[:MAX_CANDIDATES]:
        if candidate in tried:
            continue
        tried.add(candidate)
        try:
            result = await fetch(session, candidate, source_id="discover", config=config)
        except SourceError:
            continue
        title = _as_feed(result, result.url)
        if title is not None:
            return Discovered(result.url, title or None, how)
    raise NoFeedFound(
        "discover", ErrorKind.NOT_A_FEED, f"no feed at {url}, in its alternate links or at the common paths"
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_ID_CHARS].strip("-")


def new_source(
    found: Discovered,
    settings: Settings,
    *,
    source_id: str | None = None,
    tags: list[str] | None = None,
    interval: int | None = None,
) -> SourceConfig:
    """The source to add for a discovered feed, validated like a ``[[sources]]`` table.

    Without an id, one is made from the feed's title (else its host), unique among the sources.
    Raises :class:`ConfigError` when the id is taken or a value is invalid.
    """
    taken = {s.id for s in settings.sources}
    if source_id is None:
        base = slug(found.title or "") or slug(urlsplit(found.url).hostname or "") or "source"
        source_id, n = base, 2
        while source_id in taken:
            source_id = f"{base[: MAX_ID_CHARS - 4]}-{n}"
            n += 1
    elif source_id in taken:
        raise ConfigError(f"a source with id {source_id!r} exists already")
    table: dict[str, object] = {"id": source_id, "url": found.url, "tags": tags or []}
    if found.title:
        table["name"] = found.title
    if interval is not None:
        table["interval_seconds"] = interval
    try:
        return SourceConfig.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"source {source_id!r}: {problems}") from exc
