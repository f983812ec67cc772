"""Normalise stage: :class:`ParsedFeed` entries → :class:`Article`, pure (``now`` is passed in).

Decides identity, plain-text titles, canonical URLs (:mod:`workers.normalise.canonical`), the date
fallbacks and clamps described in :mod:`service.models`, one record per author
(:mod:`workers.normalise.authors`), and sanitises summary and content
(:mod:`workers.normalise.sanitise`, which also makes their links absolute against the item's link).

Every text an article shows (title, summary, content, authors, tags, image caption and credit,
language) leaves here without C1 control characters (:func:`drop_c1`) and within ``[limits]``
(:mod:`workers.normalise.limits`; what was cut is recorded on the article): this is the one
stage all sources pass through, pages and full text included, so the renderers never meet
either. Only http(s) URLs leave as links, enclosures and images.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import re
from collections import Counter
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from lxml import etree

from service.config import CanonicalConfig, LimitsConfig, SanitiseConfig, SourceConfig
from service.models import Article, ArticleFlag, Author, Enclosure, Image, RejectedEntry, SourceRef
from service.urls import WEB_SCHEMES, is_web_url, join_url, plain_join
from workers.normalise.authors import merge_authors
from workers.normalise.canonical import canonical_url, strip_tracking
from workers.normalise.limits import RAW_FACTOR, Caps, cut_text
from workers.normalise.sanitise import first_image, sanitise_html
from workers.parse.controls import has_c1
from workers.parse.types import ParsedEntry, ParsedFeed

__all__ = [
    "Normalised",
    "article_id",
    "drop_c1",
    "html_to_text",
    "normalise_entries",
    "normalise_entry",
    "normalise_feed",
]

UNTITLED = "(untitled)"
TITLE_EXCERPT_CHARS = 80
SUMMARY_TEXT_CHARS = 280
FUTURE_TOLERANCE = timedelta(days=1)
"""A date further ahead than this is a feed's mistake: clamped to first-seen and flagged."""
DEFAULT_SANITISE = SanitiseConfig()
DEFAULT_CANONICAL = CanonicalConfig()
DEFAULT_LIMITS = LimitsConfig()
MEDIA_TYPE_CHARS = 255  # RFC 6838 names are at most 127 + 1 + 127; longer is not a media type
LANGUAGE_CHARS = 64  # a BCP 47 tag in practice stays under 35
_C1_CONTROLS = re.compile("[\x80-\x9f]")


REJECTED_FIELD_CHARS = 500
"""Each field of a rejected entry kept for its dead letter is cut to this (the letter stays small)."""


@dataclass(frozen=True)
class Normalised:
    articles: list[Article]
    warnings: list[str] = field(default_factory=list)
    rejected: list[RejectedEntry] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    """The feed entry each article came from (its index in ``feed.entries``)."""


def normalise_feed(
    feed: ParsedFeed,
    *,
    source: SourceConfig,
    now: datetime,
    sanitise: SanitiseConfig = DEFAULT_SANITISE,
    canonical: CanonicalConfig = DEFAULT_CANONICAL,
    limits: LimitsConfig = DEFAULT_LIMITS,
) -> tuple[list[Article], list[str]]:
    """The articles and warnings of :func:`normalise_entries` (without the rejected entries)."""
    done = normalise_entries(feed, source=source, now=now, sanitise=sanitise, canonical=canonical, limits=limits)
    return done.articles, done.warnings


def normalise_entries(
    feed: ParsedFeed,
    *,
    source: SourceConfig,
    now: datetime,
    sanitise: SanitiseConfig = DEFAULT_SANITISE,
    canonical: CanonicalConfig = DEFAULT_CANONICAL,
    limits: LimitsConfig = DEFAULT_LIMITS,
    skip: AbstractSet[int] = frozenset(),
) -> Normalised:
    """Every entry that normalises, in feed order, plus one warning per entry that did not
    and one for all the entries cut to ``[limits]``; the entries that failed, with their error.
    The entries whose index is in ``skip`` are passed over (known to be stored unchanged).

    Only this stage's warnings are returned; ``feed.warnings`` are not repeated. An entry
    whose id repeats an earlier one in the same document is dropped (a warning, not a rejected
    entry: nothing is lost): the first one wins.
    """
    articles: list[Article] = []
    warnings: list[str] = []
    rejected: list[RejectedEntry] = []
    indexes: list[int] = []
    seen: set[str] = set()
    base = _feed_base(feed, source)
    for index, entry in enumerate(feed.entries):
        if index in skip:
            continue
        try:
            article = _normalise_entry(entry, source, feed, base, now, sanitise, canonical, limits)
        except ValueError as exc:  # pydantic's ValidationError included
            error = " ".join(str(exc)[:500].split())
            warnings.append(f"entry {index} skipped: {error}")
            rejected.append(RejectedEntry(index=index, entry=_essentials(entry), error=error))
            continue
        if article.id in seen:
            warnings.append(f"entry {index} skipped: repeats the id of an earlier entry ({entry.guid or entry.link})")
            continue
        seen.add(article.id)
        articles.append(article)
        indexes.append(index)
    cut = Counter(field for article in articles for field in article.truncated)
    if cut:
        fields = ", ".join(f"{field} ({count})" for field, count in sorted(cut.items()))
        warnings.append(f"{sum(bool(a.truncated) for a in articles)} entries cut to [limits]: {fields}")
    return Normalised(articles, warnings, rejected, indexes)


def _essentials(entry: ParsedEntry) -> dict[str, str]:
    fields = {
        "guid": entry.guid,
        "link": entry.link,
        "title": entry.title,
        "published": entry.published.isoformat() if entry.published else None,
        "updated": entry.updated.isoformat() if entry.updated else None,
        "summary": entry.summary or entry.content,
    }
    return {name: value[:REJECTED_FIELD_CHARS] for name, value in fields.items() if value}


def normalise_entry(
    entry: ParsedEntry,
    *,
    source: SourceConfig,
    feed: ParsedFeed,
    now: datetime,
    sanitise: SanitiseConfig = DEFAULT_SANITISE,
    canonical: CanonicalConfig = DEFAULT_CANONICAL,
    limits: LimitsConfig = DEFAULT_LIMITS,
) -> Article:
    """One entry as an :class:`Article`; raises ``ValueError`` when it cannot be identified."""
    return _normalise_entry(entry, source, feed, _feed_base(feed, source), now, sanitise, canonical, limits)


def _normalise_entry(
    entry: ParsedEntry,
    source: SourceConfig,
    feed: ParsedFeed,
    base: str,
    now: datetime,
    sanitise: SanitiseConfig,
    canonical: CanonicalConfig,
    limits: LimitsConfig,
) -> Article:
    caps = Caps(limits)
    link = _web_url(entry.link, base)
    url = canonical_url(link, canonical) if link else None
    # Plain titles are entity-decoded too: feeds that escape twice are common, titles never
    # legitimately show "&amp;".
    raw_title = caps.raw("title", entry.title, limits.title_chars)
    title = html_to_text(raw_title) if entry.title_is_html else _fold(htmllib.unescape(raw_title or ""))
    # RSS allows items with only a description; their excerpt stands in as title and identity.
    title = _fold(drop_c1(title or _excerpt(entry.summary) or _excerpt(entry.content)))
    title = caps.text("title", title, limits.title_chars) or ""

    flags: set[ArticleFlag] = set()
    feed_published = entry.published or entry.updated
    if feed_published is None:
        flags.add(ArticleFlag.PUBLISHED_MISSING)
    if entry.updated is None:
        flags.add(ArticleFlag.UPDATED_MISSING)
    published, updated = _clamp(feed_published, now), _clamp(entry.updated, now)
    if published != feed_published or updated != entry.updated:
        flags.add(ArticleFlag.DATE_CLAMPED)

    links_base = url or base

    def clean(html: str) -> str | None:
        return _visible(sanitise_html(html, links_base, sanitise, canonical))

    summary = caps.html("summary", entry.summary, limits.summary_chars, clean)
    content = caps.html("content", entry.content, limits.content_chars, clean)
    # Identity uses the whole guid and URL and the feed's own date, never `now`, so it is the
    # same on every poll; what is stored and shown is capped.
    identity = article_id(source.id, _identity_guid(entry.guid, canonical), url, title, feed_published)
    language = _visible(entry.language or feed.language)
    if language is not None and len(language) > LANGUAGE_CHARS:
        caps.cut.add("language")
        language = None
    article = Article(
        id=identity,
        source_id=source.id,
        guid=entry.guid[: limits.guid_chars] if entry.guid else None,
        url=caps.url("url", url),
        title=title or UNTITLED,
        summary=summary,
        summary_text=summary_text(summary or content),
        content=content,
        authors=_authors(entry.authors, caps),
        tags=_tags(entry.tags, caps),
        image=_image(entry.image, content, summary, caps),
        enclosures=_enclosures(entry.enclosures, caps),
        language=language,
        published=published or now,
        updated=updated or published or now,
        first_seen=now,
        sources=(
            SourceRef(
                id=source.id, name=source.display_name, link=source.url, url=caps.url("url", link), first_seen=now
            ),
        ),
        flags=frozenset(flags),
    )
    if entry.guid and len(entry.guid) > limits.guid_chars:
        caps.cut.add("guid")
    if caps.cut:
        article = article.model_copy(
            update={"flags": article.flags | {ArticleFlag.TRUNCATED}, "truncated": tuple(sorted(caps.cut))}
        )
    return article


def _authors(authors: tuple[Author, ...], caps: Caps) -> tuple[Author, ...]:
    """One record per person (merging is quadratic: only the first few times the cap are looked
    at), each name and e-mail within ``author_chars``, a URL past ``url_chars`` dropped."""
    limits = caps.limits
    merged = merge_authors(_visible_author(a) for a in authors[: limits.authors * RAW_FACTOR])
    if len(authors) > limits.authors * RAW_FACTOR:
        caps.cut.add("authors")
    bounded = [_bounded_author(author, caps) for author in merged]
    return caps.first("authors", [a for a in bounded if a.name or a.email or a.url], limits.authors)


def _bounded_author(author: Author, caps: Caps) -> Author:
    limit = caps.limits.author_chars
    name, email = caps.text("authors", author.name, limit), caps.text("authors", author.email, limit)
    url = caps.url("authors", author.url)
    if name is author.name and email is author.email and url is author.url:
        return author
    return Author(name=name, email=email, url=url)


def _tags(tags: tuple[str, ...], caps: Caps) -> tuple[str, ...]:
    limits = caps.limits
    if len(tags) > limits.tags * RAW_FACTOR:
        caps.cut.add("tags")
    unique = _unique_tags(tuple(t[: limits.tag_chars * RAW_FACTOR] for t in tags[: limits.tags * RAW_FACTOR]))
    bounded = tuple(dict.fromkeys(caps.text("tags", tag, limits.tag_chars) or "" for tag in unique))
    return caps.first("tags", bounded, limits.tags)


def _enclosures(enclosures: tuple[Enclosure, ...], caps: Caps) -> tuple[Enclosure, ...]:
    """http(s) enclosures only (no ``javascript:`` or ``data:`` ones reach any format), each
    URL within ``url_chars`` and a media type that could be one."""
    kept = []
    for enclosure in enclosures:
        if not is_web_url(enclosure.url) or caps.url("enclosures", enclosure.url) is None:
            continue
        media_type = enclosure.type
        if media_type is not None and len(media_type) > MEDIA_TYPE_CHARS:
            caps.cut.add("enclosures")
            media_type = None
        kept.append(enclosure if media_type == enclosure.type else enclosure.model_copy(update={"type": media_type}))
    return caps.first("enclosures", kept, caps.limits.enclosures)


def _image(image: Image | None, content: str | None, summary: str | None, caps: Caps) -> Image | None:
    """The entry's image, else the first one its content shows; http(s) and within ``url_chars``."""
    if image is not None and not is_web_url(image.url):
        image = None
    if image is None:
        fallback = first_image(content) or first_image(summary)
        image = Image(url=fallback) if fallback and is_web_url(fallback) else None
    if image is None or caps.url("image", image.url) is None:
        return None
    if image.caption or image.credit:
        limit = caps.limits.author_chars
        caption = caps.text("image", _visible(image.caption), limit)
        credit = caps.text("image", _visible(image.credit), limit)
        image = image.model_copy(update={"caption": caption, "credit": credit})
    return image


def drop_c1(text: str) -> str:
    """``text`` without C1 controls (U+0080–U+009F).

    They are what bytes 0x80–0x9F become when Windows-1252 (or UTF-8) is decoded as Latin-1, or
    what ``&#x81;`` unescapes to: invisible at best, invalid in the feeds we publish at worst.
    """
    return _C1_CONTROLS.sub("", text) if has_c1(text) else text


def _visible(text: str | None) -> str | None:
    return (drop_c1(text) or None) if text else None


def _visible_author(author: Author) -> Author:
    name, email = _visible(author.name), _visible(author.email)
    if name == author.name and email == author.email:
        return author
    return Author(name=name, email=email, url=author.url)


def summary_text(html: str | None, limit: int = SUMMARY_TEXT_CHARS) -> str | None:
    """Plain text for JSON consumers: at most ``limit`` characters, cut on a word boundary.

    ``html`` is sanitised HTML (:func:`workers.normalise.sanitise.sanitise_html`).
    """
    text = _leading_text(html, limit)
    return cut_text(text, limit) if text else None


def _leading_text(html: str | None, limit: int) -> str:
    """``html_to_text(html)``, or a prefix of it longer than ``limit`` characters: all that
    :func:`summary_text` reads. Long HTML is read up to the first tag end past ``limit`` times
    :data:`_HEAD_FACTOR` characters; in sanitised HTML every ">" ends a tag (nh3 escapes it in
    text and attribute values), and the text of such a head is a prefix of the text of the whole.
    """
    if html and len(html) > _HEAD_FACTOR * limit:
        cut = html.find(">", _HEAD_FACTOR * limit)
        if cut != -1:
            head = html_to_text(html[: cut + 1])
            if len(head) > limit:
                return head
    return html_to_text(html)


_HEAD_FACTOR = 2


def _clamp(value: datetime | None, now: datetime) -> datetime | None:
    return now if value is not None and value > now + FUTURE_TOLERANCE else value


def _identity_guid(guid: str | None, canonical: CanonicalConfig) -> str | None:
    """A permalink guid without its tracking parameters, so a changed utm_* is not a new entry."""
    if guid and guid[:8].lower().startswith(("http://", "https://")):
        return strip_tracking(guid, canonical)
    return guid


def article_id(source_id: str, guid: str | None, link: str | None, title: str | None, date: datetime | None) -> str:
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


def html_to_text(html: str | None) -> str:
    """The visible text of an HTML fragment, entities decoded, whitespace folded.

    What ``lxml.html.fragment_fromstring(html, create_parent="div").text_content()`` gives once
    hidden elements are dropped and blocks spaced, read straight from the parsed body with a plain
    HTML parser (no per-element class lookup calling back into Python, no wrapper element). The
    whitespace-only leading text the wrapper would not take is folded away either way.
    """
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _fold(html)
    try:
        body = _html_body(html)
    except (etree.ParserError, ValueError):
        return _fold(html)
    if body is None:  # "<html>", or a second <body> the parser could not merge: no visible text
        return ""
    return _fold(_visible_text(body))


_HTML_PARSER = etree.HTMLParser()  # lxml.html's parser options, without its element classes
_FULL_HTML = re.compile(r"^\s*<(?:html|!doctype)", re.IGNORECASE)


def _visible_text(body: etree._Element) -> str:
    """``string(body)`` once every hidden element is dropped (its tail kept) and every block
    element has a space before its text and before its tail ("a</p><p>b" reads as two words).

    Read in one walk instead of changing the tree and asking XPath: the text nodes of comments
    and processing instructions are not text, their tails are. A loop, not recursion: nesting
    depth is the document's.
    """
    pieces = [body.text or ""]
    stack: list[tuple[Iterator[etree._Element], etree._Element | None]] = [(iter(body), None)]
    while stack:
        children, parent = stack[-1]
        child = next(children, None)
        if child is None:  # parent done: the space after a block, then its tail
            stack.pop()
            if parent is not None:
                pieces.append(" " + (parent.tail or "") if parent.tag in _BLOCKS else parent.tail or "")
            continue
        tag = child.tag
        if isinstance(tag, str) and tag not in _HIDDEN:
            pieces.append(" " + (child.text or "") if tag in _BLOCKS else child.text or "")
            stack.append((iter(child), child))
        else:  # hidden, a comment or a processing instruction: only its tail shows
            pieces.append(child.tail or "")
    return "".join(pieces)


def _html_body(html: str) -> etree._Element | None:
    """The ``<body>`` ``lxml.html.fragments_fromstring`` takes the fragment's nodes from; None
    where lxml.html asserts (no body, or two): hostile input must not fail the entry's feed."""
    if not _FULL_HTML.match(html):
        html = f"<html><body>{html}</body></html>"
    document = etree.fromstring(html, _HTML_PARSER)
    if document is None:
        raise etree.ParserError("Document is empty")
    bodies = [element for element in document if element.tag == "body"]
    if document.tag != "html" or len(bodies) != 1:
        return None
    return bodies[0]


_HIDDEN = frozenset({"script", "style", "template"})
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    }
)


def _excerpt(html: str | None) -> str:
    text = html_to_text(html[: TITLE_EXCERPT_CHARS * 1024] if html else html)  # the head is plenty
    if len(text) <= TITLE_EXCERPT_CHARS:
        return text
    return text[:TITLE_EXCERPT_CHARS].rstrip() + "…"


def _fold(text: str) -> str:
    return " ".join(text.split())


def _feed_base(feed: ParsedFeed, source: SourceConfig) -> str:
    if feed.link:
        try:
            return join_url(source.url, feed.link)
        except ValueError:
            pass
    return source.url


def _web_url(link: str | None, base: str) -> str | None:
    """``link`` made absolute; only http(s) URLs are kept (no ``javascript:`` article links)."""
    if not link:
        return None
    if (plain := plain_join(base, link.strip())) is not None:
        return plain  # an http(s) URL as plain_join vouches for it: nothing for urlsplit to say
    try:
        url = join_url(base, link.strip())
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in WEB_SCHEMES else None


def _unique_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    """Whitespace-folded, first spelling kept, case-insensitive duplicates dropped."""
    unique: dict[str, str] = {}
    for tag in tags:
        folded = _fold(drop_c1(tag))
        if folded:
            unique.setdefault(folded.casefold(), folded)
    return tuple(unique.values())
