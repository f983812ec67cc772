"""One article page → :class:`ParsedEntry`: configured CSS selectors first, trafilatura for the rest.

Pure (HTML in, data out). What each field comes from, first match wins:

- title: ``selectors.title`` → ``og:title`` → trafilatura's guess from the page's headings → ``<title>``;
- published / updated: the selector (its ``datetime`` or ``content`` attribute, else its
  text, read by :func:`workers.parse.dates.parse_date` in the source's zone) → ``article:*_time``,
  ``itemprop`` and JSON-LD metadata → for published only, htmldate's day-precision guess (the date
  trafilatura would report);
- image: ``selectors.image`` (an ``<img>``, something holding one, or a ``<meta>``) →
  ``og:image``; caption: ``selectors.caption`` → the ``<figcaption>`` of the image's figure,
  with a trailing credit ("Photo: AFP") split off into ``credit``;
- body: ``selectors.body`` cleaned here → trafilatura's main-text extraction as HTML.

The page is cleaned before either body path runs (:mod:`workers.extract.cleanup`: ``selectors.remove``,
widgets, hidden blocks; a body split in several containers is joined for trafilatura), and the
body trimmed after it (:mod:`workers.extract.trim`: the image caption, headline and standfirst
where the page repeats them, closing boilerplate). The HTML is left unsanitised:
:func:`workers.normalise.entry.normalise_entry` does that for every entry alike.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from urllib.parse import urljoin

import lxml.html
import trafilatura
from htmldate import find_date
from lxml.html import HtmlElement
from trafilatura.htmlprocessing import build_html_output
from trafilatura.metadata import extract_author, extract_title
from trafilatura.settings import Document

from service.config import PageSelectors
from service.errors import ErrorKind, ParseError
from service.models import Author, Image
from workers.extract.cleanup import clean_page, join_split_body
from workers.extract.page import children, drop, elements, fold, image_src, load_page, select, select_first, text
from workers.extract.stated_dates import stated_dates
from workers.extract.trim import trim_body
from workers.parse.dates import parse_date
from workers.parse.types import ParsedEntry

__all__ = ["DateSource", "ExtractedPage", "extract_article", "extract_page", "split_credit"]

NO_SELECTORS = PageSelectors()

_NOISE_TAGS = ("script", "style", "noscript", "template", "form", "button", "input", "select", "nav", "footer")

_CREDIT = re.compile(
    r"(?:^|(?<=[\s.;,(\[|–—-]))[(\[]?"
    r"((?:photo(?:graph)?s?|pictures?|images?|video|illustration|credit|source)(?:\s+credit)?\s*[:：]\s*[^:：]{1,80}?"
    r"|©\s*[^©]{1,80}?)"
    r"[)\]]?\s*\.?\s*$",
    re.IGNORECASE,
)
_AGENCY = re.compile(r"\s*\(((?:[A-Z][\w.&'-]*)(?:[ /][A-Z][\w.&'-]*){0,4})\)\s*\.?\s*$")

_PUBLISHED_META = (
    "article:published_time",
    "og:published_time",
    "datePublished",
    "pubdate",
    "publishdate",
    "date",
    "dc.date.issued",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
)
_UPDATED_META = ("article:modified_time", "og:updated_time", "dateModified", "lastmod", "dcterms.modified")


class DateSource(StrEnum):
    """Where ``published`` came from: a day-precision guess must not beat a feed's date."""

    SELECTOR = "selector"
    METADATA = "metadata"
    TEXT = "text"  # a date-time the page prints (workers.extract.stated_dates)
    GUESS = "guess"
    NONE = "none"


@dataclass(frozen=True)
class ExtractedPage:
    entry: ParsedEntry
    published_from: DateSource


def extract_article(
    html: bytes | str,
    url: str,
    selectors: PageSelectors | None = None,
    default_tz: tzinfo = UTC,
    *,
    content_type: str | None = None,
) -> ParsedEntry:
    """The article on the page at ``url`` as a :class:`ParsedEntry` (link = ``url``).

    Raises :class:`ParseError` when the body is not an HTML page or holds neither a title nor
    any text.
    """
    return extract_page(html, url, selectors, default_tz, content_type=content_type).entry


def extract_page(
    html: bytes | str,
    url: str,
    selectors: PageSelectors | None = None,
    default_tz: tzinfo = UTC,
    *,
    content_type: str | None = None,
) -> ExtractedPage:
    """:func:`extract_article`, also telling where the publication date came from."""
    selectors = selectors or NO_SELECTORS
    tree = load_page(html, url, content_type=content_type)
    metadata = _metadata(tree)
    image = _image(tree, url, selectors, metadata)

    published, published_from = _selected_date(tree, selectors.published, default_tz), DateSource.SELECTOR
    if published is None:
        published, published_from = _meta_date(metadata, _PUBLISHED_META, default_tz), DateSource.METADATA
    updated = _selected_date(tree, selectors.updated, default_tz) or _meta_date(metadata, _UPDATED_META, default_tz)
    if published is None or updated is None:  # what the page prints, before noise removal drops it
        stated = stated_dates(tree, default_tz)
        if published is None and stated.published is not None:
            published, published_from = stated.published, DateSource.TEXT
        updated = updated or stated.updated
    title = fold(text(select_first(tree, selectors.title)))

    clean_page(tree, selectors.remove)
    title = title or fold(metadata.get("og:title"))
    language = (tree.get("lang") or "").strip() or None
    author = metadata.get("author")
    body: HtmlElement | None
    if selectors.body and (selected := select(tree, selectors.body)):
        body = _selected_body(selected)
    else:
        join_split_body(tree)
        body = _trafilatura(tree, url)
        # trafilatura's guesses cost a pass over the page each: only for what the page's metadata lacks
        if published is None and (guess := find_date(tree, extensive_search=True, original_date=True, url=url)):
            published, published_from = parse_date(guess, default_tz), DateSource.GUESS
        title = title or fold(extract_title(tree))
        author = author or extract_author(tree)
    if published is None:
        published_from = DateSource.NONE

    page_title = fold(text(select_first(tree, "title")))
    title = title or page_title
    summary = _summary(metadata)
    if body is not None:
        trim_body(body, image, url, (title, page_title, fold(metadata.get("og:title")), summary or ""))
    content = _serialise(body)
    if not title and not content:
        raise ParseError(url, ErrorKind.PARSE, "no article found on the page")
    entry = ParsedEntry(
        link=url,
        title=title or None,
        summary=summary,
        content=content,
        authors=tuple(Author(name=name.strip()) for name in (author or "").split(";") if name.strip()),
        published=published,
        updated=updated,
        image=image,
        language=language,
    )
    return ExtractedPage(entry, published_from)


def split_credit(caption: str) -> tuple[str, str | None]:
    """``"Troops advance. Photo: AFP"`` → ``("Troops advance.", "Photo: AFP")``.

    A credit is a trailing "Photo:/Image:/Credit:…" or "© …" phrase, or a trailing
    parenthesised agency-like name such as "(Reuters)" or "(AP Photo/Jane Doe)".
    """
    caption = fold(caption)
    match = _CREDIT.search(caption) or _AGENCY.search(caption)
    if not match:
        return caption, None
    return caption[: match.start()].rstrip(" ([|–—-"), match.group(1).strip()


# --- metadata -----------------------------------------------------------------------------


def _metadata(tree: HtmlElement) -> dict[str, str]:
    """``<meta>`` property/name/itemprop → content, first wins; JSON-LD dates, author and image fill gaps."""
    found: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        value = meta.get("content")
        if key and value and value.strip():
            found.setdefault(key.strip().lower() if ":" in key or "." in key else key.strip(), value.strip())
    for element in elements(tree.xpath("//*[@itemprop='datePublished' or @itemprop='dateModified'][@datetime]")):
        found.setdefault(element.get("itemprop", ""), element.get("datetime", ""))
    for script in elements(tree.xpath("//script[@type='application/ld+json']")):
        for item in _json_ld_items(script.text or ""):
            for key in ("datePublished", "dateModified"):
                if isinstance(value := item.get(key), str):
                    found.setdefault(key, value)
            author = item.get("author")
            names = [a.get("name") for a in (author if isinstance(author, list) else [author]) if isinstance(a, dict)]
            if any(isinstance(n, str) for n in names):
                found.setdefault("author", "; ".join(n for n in names if isinstance(n, str)))
    return found


def _json_ld_items(source: str) -> list[dict[str, object]]:
    try:
        data = json.loads(source)
    except ValueError:
        return []
    items = data if isinstance(data, list) else data.get("@graph", [data]) if isinstance(data, dict) else []
    return [item for item in items if isinstance(item, dict)]


def _meta_date(metadata: dict[str, str], names: tuple[str, ...], default_tz: tzinfo) -> datetime | None:
    for name in names:
        value = metadata.get(name) or metadata.get(name.lower())
        if value and (parsed := parse_date(value, default_tz)):
            return parsed
    return None


def _selected_date(tree: HtmlElement, selector: str | None, default_tz: tzinfo) -> datetime | None:
    element = select_first(tree, selector)
    if element is None:
        return None
    for candidate in (element.get("datetime"), element.get("content"), text(element), element.get("title")):
        if candidate and (parsed := parse_date(fold(candidate), default_tz)):
            return parsed
    return None


def _summary(metadata: dict[str, str]) -> str | None:
    description = fold(metadata.get("og:description") or metadata.get("description"))
    return description or None


# --- image ----------------------------------------------------------------------------------


def _image(tree: HtmlElement, url: str, selectors: PageSelectors, metadata: dict[str, str]) -> Image | None:
    element = select_first(tree, selectors.image)
    img = None
    if element is not None:
        img = element if element.tag == "img" else next(iter(element.iter("img")), None)
        src = image_src(img if img is not None else element)
    else:
        src = metadata.get("og:image") or metadata.get("twitter:image")
    if not src:
        return None
    src = urljoin(url, src.strip())
    if img is None:
        img = next((i for i in tree.iter("img") if (s := image_src(i)) and urljoin(url, s.strip()) == src), None)
    caption_element = select_first(tree, selectors.caption)
    if caption_element is None and img is not None:
        figure = next(iter(img.iterancestors("figure")), None)
        caption_element = next(iter(figure.iter("figcaption")), None) if figure is not None else None
    caption, credit = split_credit(text(caption_element)) if caption_element is not None else ("", None)
    return Image(url=src, caption=caption or None, credit=credit)


# --- body -----------------------------------------------------------------------------------


def _selected_body(selected: list[HtmlElement]) -> HtmlElement:
    """The selected body elements gathered in one wrapper, without tags no article text needs."""
    wrapper = _wrapper()
    for element in selected:
        wrapper.append(copy.deepcopy(element))
    for element in list(children(wrapper, *_NOISE_TAGS)):
        drop(element)
    return wrapper


def _trafilatura(tree: HtmlElement, url: str) -> HtmlElement | None:
    """trafilatura's main text as HTML: links and emphasis kept, comments left out."""
    # bare_extraction, not extract: extract also fingerprints the text, which nothing here reads
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        output_format="html",
        include_comments=False,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_images=False,
    )
    if not isinstance(document, Document) or document.body is None:
        return None
    html = unicodedata.normalize("NFC", build_html_output(document))
    body = lxml.html.document_fromstring(html).find("body")
    if body is None:
        return None
    wrapper = _wrapper()
    wrapper.text = body.text
    for child in list(body):
        wrapper.append(child)
    return wrapper


def _wrapper() -> HtmlElement:
    """An empty ``<div>`` to gather a body in (serialised without it)."""
    return lxml.html.fragment_fromstring("<div></div>")


def _serialise(wrapper: HtmlElement | None) -> str | None:
    if wrapper is None or not fold(text(wrapper)):
        return None
    html = lxml.html.tostring(wrapper, encoding="unicode")
    return html[len("<div>") : -len("</div>")].strip() or None
