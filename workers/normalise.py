"""Normalise stage: :class:`ParsedFeed` entries → :class:`Article`, pure (``now`` is passed in).

Decides identity, plain-text titles, absolute URLs and the date fallbacks described in
:mod:`service.models`. HTML is made link-absolute but NOT sanitised here: sanitising is the
next stage's job, which is why :func:`absolutise_links` is a separate, single-purpose step.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from service.config import SourceConfig
from service.models import Article, ArticleFlag
from workers.parse.types import ParsedEntry, ParsedFeed

__all__ = ["absolutise_links", "article_id", "html_to_text", "normalise_entry", "normalise_feed"]

UNTITLED = "(untitled)"
TITLE_EXCERPT_CHARS = 80
_WEB_SCHEMES = frozenset({"http", "https"})
_WRAPPER_OPEN, _WRAPPER_CLOSE = "<div>", "</div>"


def normalise_feed(feed: ParsedFeed, *, source: SourceConfig, now: datetime) -> tuple[list[Article], list[str]]:
    """Every entry that normalises, in feed order, plus one warning per entry that did not.

    Only this stage's warnings are returned; ``feed.warnings`` are not repeated. An entry
    whose id repeats an earlier one in the same document is dropped: the first one wins.
    """
    articles: list[Article] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(feed.entries):
        try:
            article = normalise_entry(entry, source=source, feed=feed, now=now)
        except ValueError as exc:  # pydantic's ValidationError included
            warnings.append(f"entry {index} skipped: {' '.join(str(exc).split())}")
            continue
        if article.id in seen:
            warnings.append(f"entry {index} skipped: repeats the id of an earlier entry ({entry.guid or entry.link})")
            continue
        seen.add(article.id)
        articles.append(article)
    return articles, warnings


def normalise_entry(entry: ParsedEntry, *, source: SourceConfig, feed: ParsedFeed, now: datetime) -> Article:
    """One entry as an :class:`Article`; raises ``ValueError`` when it cannot be identified."""
    base = _feed_base(feed, source)
    url = _web_url(entry.link, base)
    title = html_to_text(entry.title) if entry.title_is_html else _fold(entry.title or "")
    # RSS allows items with only a description; their excerpt stands in as title and identity.
    title = title or _excerpt(entry.summary) or _excerpt(entry.content)

    flags: set[ArticleFlag] = set()
    published = entry.published or entry.updated
    if published is None:
        flags.add(ArticleFlag.PUBLISHED_MISSING)
    if entry.updated is None:
        flags.add(ArticleFlag.UPDATED_MISSING)

    links_base = url or base
    summary = absolutise_links(entry.summary, links_base) if entry.summary else None
    content = absolutise_links(entry.content, links_base) if entry.content else None
    return Article(
        # Identity uses the feed's own date, never `now`, so it is the same on every poll.
        id=article_id(source.id, entry.guid, url, title, published),
        source_id=source.id,
        guid=entry.guid,
        url=url,
        title=title or UNTITLED,
        summary=summary,
        content=content,
        authors=entry.authors,
        tags=_unique_tags(entry.tags),
        image=entry.image,
        enclosures=entry.enclosures,
        language=entry.language or feed.language,
        published=published or now,
        updated=entry.updated or published or now,
        first_seen=now,
        sources=(),
        flags=frozenset(flags),
    )


def article_id(
    source_id: str, guid: str | None, link: str | None, title: str | None, date: datetime | None
) -> str:
    """Stable article id: the source plus the strongest identity the entry offers.

    guid, else link, else title + date (``title`` may be the summary excerpt standing in for a
    missing title, never the "(untitled)" placeholder). Raises ``ValueError`` when the entry
    has none of them.
    """
    if guid:
        identity = f"guid:{guid}"
    elif link:
        identity = f"link:{link}"
    elif title:
        identity = f"title:{title}|{date.astimezone(UTC).isoformat() if date else ''}"
    else:
        raise ValueError("entry has no guid, link or title to identify it by")
    return hashlib.sha256(f"{source_id}\0{identity}".encode()).hexdigest()[:32]


def absolutise_links(html: str, base: str | None) -> str:
    """``html`` with every relative link (href, src, srcset, CSS url()…) resolved against ``base``.

    Only resolves; it does not sanitise. Markup lxml cannot read comes back unchanged.
    """
    if not html or not base or "<" not in html:
        return html
    try:
        wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html
    wrapper.make_links_absolute(base, resolve_base_href=True, handle_failures="ignore")
    # lxml's link list predates these two.
    for element in wrapper.iter("img", "source", "video"):
        if poster := element.get("poster"):
            element.set("poster", _join(base, poster))
        if srcset := element.get("srcset"):
            element.set("srcset", _absolute_srcset(srcset, base))
    serialised = lxml.html.tostring(wrapper, encoding="unicode")
    return serialised[len(_WRAPPER_OPEN) : -len(_WRAPPER_CLOSE)]


def _absolute_srcset(srcset: str, base: str) -> str:
    """Resolve each candidate URL of a srcset; URLs may contain commas (``data:`` URLs)."""
    candidates: list[str] = []
    position, length = 0, len(srcset)
    while position < length:
        while position < length and (srcset[position].isspace() or srcset[position] == ","):
            position += 1
        start = position
        while position < length and not srcset[position].isspace():
            position += 1
        url, descriptor = srcset[start:position], ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = position
            while position < length and srcset[position] != ",":
                position += 1
            descriptor = srcset[start:position].strip()
        if url:
            candidates.append(f"{_join(base, url)} {descriptor}".rstrip())
    return ", ".join(candidates)


def _join(base: str, url: str) -> str:
    try:
        return urljoin(base, url.strip())
    except ValueError:
        return url


def html_to_text(html: str | None) -> str:
    """The visible text of an HTML fragment, entities decoded, whitespace folded."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _fold(html)
    try:
        wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _fold(html)
    for hidden in wrapper.xpath(".//script | .//style | .//template"):
        hidden.drop_tree()
    return _fold(wrapper.text_content())


def _excerpt(html: str | None) -> str:
    text = html_to_text(html)
    if len(text) <= TITLE_EXCERPT_CHARS:
        return text
    return text[:TITLE_EXCERPT_CHARS].rstrip() + "…"


def _fold(text: str) -> str:
    return " ".join(text.split())


def _feed_base(feed: ParsedFeed, source: SourceConfig) -> str:
    if feed.link:
        try:
            return urljoin(source.url, feed.link)
        except ValueError:
            pass
    return source.url


def _web_url(link: str | None, base: str) -> str | None:
    """``link`` made absolute; only http(s) URLs are kept (no ``javascript:`` article links)."""
    if not link:
        return None
    try:
        url = urljoin(base, link.strip())
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in _WEB_SCHEMES else None


def _unique_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    """Whitespace-folded, first spelling kept, case-insensitive duplicates dropped."""
    unique: dict[str, str] = {}
    for tag in tags:
        folded = _fold(tag)
        if folded:
            unique.setdefault(folded.casefold(), folded)
    return tuple(unique.values())
