"""One article page → :class:`ParsedEntry`: configured CSS selectors first, trafilatura for the rest.

Pure (HTML in, data out). What each field comes from, first match wins:

- title: ``selectors.title`` → ``og:title`` / trafilatura's metadata → ``<title>``;
- published / updated: the selector (its ``datetime`` or ``content`` attribute, else its
  text, read by :func:`workers.parse.dates.parse_date` in the source's zone) → ``article:*_time``,
  ``itemprop`` and JSON-LD metadata → for published only, trafilatura's day-precision guess;
- image: ``selectors.image`` (an ``<img>``, something holding one, or a ``<meta>``) →
  ``og:image``; caption: ``selectors.caption`` → the ``<figcaption>`` of the image's figure,
  with a trailing credit ("Photo: AFP") split off into ``credit``;
- body: ``selectors.body`` cleaned here → trafilatura's main-text extraction as HTML.

Noise is dropped before either body path runs: ``selectors.remove`` plus share/social/weather/
related widgets recognised by class or id, and the image caption where the page repeats it in
the text. The HTML is left unsanitised: :func:`workers.normalise.entry.normalise_entry` does that
for every entry alike.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from urllib.parse import urljoin

import lxml.html
import trafilatura
from lxml import etree

from service.config import PageSelectors
from service.errors import ErrorKind, ParseError
from service.models import Author, Image
from workers.extract.page import fold, load_page, select, select_first
from workers.parse.dates import parse_date
from workers.parse.types import ParsedEntry

__all__ = ["DateSource", "ExtractedPage", "extract_article", "extract_page", "split_credit"]

NO_SELECTORS = PageSelectors()

# Widgets no article body needs, matched case-insensitively in class and id attributes.
NOISE_WORDS = ("share", "sharing", "social", "weather", "related", "newsletter", "cookie", "advert", "promo")
_NOISE_TAGS = ("script", "style", "noscript", "template", "form", "button", "input", "select", "nav", "footer")
# A "noise" element this large is a layout wrapper whose class merely mentions a word.
_NOISE_MAX_CHARS = 1500
_STRUCTURAL = frozenset({"html", "body", "main", "article"})
_NOISE = re.compile("|".join(NOISE_WORDS), re.IGNORECASE)

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
_BLOCKS = "p", "div", "li", "figcaption", "blockquote", "span", "h2", "h3", "h4", "h5", "h6", "small", "em"


class DateSource(StrEnum):
    """Where ``published`` came from: a day-precision guess must not beat a feed's date."""

    SELECTOR = "selector"
    METADATA = "metadata"
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
    title = fold(_text(select_first(tree, selectors.title)))

    _drop_noise(tree, selectors.remove)
    title = title or fold(metadata.get("og:title"))
    page_title = fold(_text(select_first(tree, "title")))
    language = (tree.get("lang") or "").strip() or None
    if selectors.body and (selected := select(tree, selectors.body)):
        body, guessed = _selected_body(selected), {}
    else:
        body, guessed = _trafilatura(tree, url)  # may alter `tree`: read it before
    if published is None and guessed.get("date"):
        published, published_from = parse_date(guessed["date"], default_tz), DateSource.GUESS
    if published is None:
        published_from = DateSource.NONE

    title = title or fold(guessed.get("title")) or page_title
    if body is not None:
        _drop_caption_copies(body, image, url)
        _drop_title_copy(body, title)
    content = _serialise(body)
    if not title and not content:
        raise ParseError(url, ErrorKind.PARSE, "no article found on the page")
    author = metadata.get("author") or guessed.get("author")
    entry = ParsedEntry(
        link=url,
        title=title or None,
        summary=_summary(metadata),
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


def _metadata(tree: lxml.html.HtmlElement) -> dict[str, str]:
    """``<meta>`` property/name/itemprop → content, first wins; JSON-LD dates, author and image fill gaps."""
    found: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        value = meta.get("content")
        if key and value and value.strip():
            found.setdefault(key.strip().lower() if ":" in key or "." in key else key.strip(), value.strip())
    for element in tree.xpath("//*[@itemprop='datePublished' or @itemprop='dateModified'][@datetime]"):
        found.setdefault(element.get("itemprop"), element.get("datetime"))
    for script in tree.xpath("//script[@type='application/ld+json']"):
        for item in _json_ld_items(script.text or ""):
            for key in ("datePublished", "dateModified"):
                if isinstance(item.get(key), str):
                    found.setdefault(key, item[key])
            author = item.get("author")
            names = [a.get("name") for a in (author if isinstance(author, list) else [author]) if isinstance(a, dict)]
            if any(isinstance(n, str) for n in names):
                found.setdefault("author", "; ".join(n for n in names if isinstance(n, str)))
    return found


def _json_ld_items(text: str) -> list[dict[str, object]]:
    try:
        data = json.loads(text)
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


def _selected_date(tree: lxml.html.HtmlElement, selector: str | None, default_tz: tzinfo) -> datetime | None:
    element = select_first(tree, selector)
    if element is None:
        return None
    for candidate in (element.get("datetime"), element.get("content"), _text(element), element.get("title")):
        if candidate and (parsed := parse_date(fold(candidate), default_tz)):
            return parsed
    return None


def _summary(metadata: dict[str, str]) -> str | None:
    description = fold(metadata.get("og:description") or metadata.get("description"))
    return description or None


# --- image ----------------------------------------------------------------------------------


def _image(tree: lxml.html.HtmlElement, url: str, selectors: PageSelectors, metadata: dict[str, str]) -> Image | None:
    element = select_first(tree, selectors.image)
    img = None
    if element is not None:
        img = element if element.tag == "img" else next(iter(element.iter("img")), None)
        src = _image_src(img if img is not None else element)
    else:
        src = metadata.get("og:image") or metadata.get("twitter:image")
    if not src:
        return None
    src = urljoin(url, src.strip())
    if img is None:
        img = next((i for i in tree.iter("img") if (s := _image_src(i)) and urljoin(url, s.strip()) == src), None)
    caption_element = select_first(tree, selectors.caption)
    if caption_element is None and img is not None:
        figure = next(iter(img.iterancestors("figure")), None)
        caption_element = next(iter(figure.iter("figcaption")), None) if figure is not None else None
    caption, credit = split_credit(_text(caption_element)) if caption_element is not None else ("", None)
    return Image(url=src, caption=caption or None, credit=credit)


def _image_src(element: etree._Element) -> str | None:
    for attribute in ("src", "data-src", "data-original", "content", "href"):
        value = element.get(attribute)
        if value and value.strip() and not value.strip().startswith("data:"):
            return value
    srcset = element.get("srcset") or element.get("data-srcset")
    return srcset.split(",")[0].split()[0] if srcset and srcset.strip() else None


# --- body -----------------------------------------------------------------------------------


def _drop_noise(tree: lxml.html.HtmlElement, remove: list[str]) -> None:
    for selector in remove:
        for element in select(tree, selector):
            _drop(element)
    noisy = [
        element
        for element in tree.iter(etree.Element)
        if element.tag not in _STRUCTURAL and _NOISE.search(f"{element.get('class', '')} {element.get('id', '')}")
    ]
    for element in noisy:
        if element.getparent() is not None and len(element.text_content()) <= _NOISE_MAX_CHARS:
            _drop(element)


def _selected_body(elements: list[etree._Element]) -> etree._Element:
    """The selected body elements gathered in one wrapper, without tags no article text needs."""
    wrapper = lxml.html.fragment_fromstring("<div></div>")
    for element in elements:
        wrapper.append(copy.deepcopy(element))
    for tag in _NOISE_TAGS:
        for element in list(wrapper.iter(tag)):
            _drop(element)
    return wrapper


def _trafilatura(tree: lxml.html.HtmlElement, url: str) -> tuple[etree._Element | None, dict[str, str]]:
    """trafilatura's main text as HTML (links and emphasis kept, comments left out) and the
    metadata it found (title, author, date…), in one pass."""
    extracted = trafilatura.extract(
        tree,
        url=url,
        output_format="html",
        with_metadata=True,
        include_comments=False,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_images=False,
    )
    if not extracted:
        return None, {}
    document = lxml.html.document_fromstring(extracted)
    found = {m.get("name"): m.get("content") for m in document.iter("meta") if m.get("name") and m.get("content")}
    body = document.find("body")
    if body is None:
        return None, found
    wrapper = lxml.html.fragment_fromstring("<div></div>")
    wrapper.text = body.text
    for child in list(body):
        wrapper.append(child)
    return wrapper, found


def _serialise(wrapper: etree._Element | None) -> str | None:
    if wrapper is None or not fold(wrapper.text_content()):
        return None
    html = lxml.html.tostring(wrapper, encoding="unicode")
    return html[len("<div>") : -len("</div>")].strip() or None


def _drop_caption_copies(wrapper: etree._Element, image: Image | None, base_url: str) -> None:
    """Drop the lead image's figure and any block that only repeats its caption."""
    if image is None:
        return
    for img in list(wrapper.iter("img")):
        if (src := _image_src(img)) and urljoin(base_url, src.strip()) == image.url:
            figure = next(iter(img.iterancestors("figure")), None)
            _drop(figure if figure is not None else img)
    if not image.caption:
        return
    copies = {_caption_key(image.caption)}
    if image.credit:
        copies.add(_caption_key(f"{image.caption} {image.credit}"))
    for element in list(wrapper.iter(*_BLOCKS)):
        if element.getparent() is not None and _caption_key(element.text_content()) in copies:
            _drop(element)


def _drop_title_copy(wrapper: etree._Element, title: str) -> None:
    """The headline repeated as the body's first heading is already the title."""
    heading = next(iter(wrapper.iter("h1", "h2")), None)
    if heading is not None and title and fold(heading.text_content()).casefold() == title.casefold():
        _drop(heading)


def _caption_key(text: str) -> str:
    return fold(text).casefold().rstrip(" .")


def _drop(element: etree._Element | None) -> None:
    """Remove ``element`` but keep its tail text (lxml's drop_tree does; plain remove() does not)."""
    if element is not None and element.getparent() is not None:
        element.drop_tree()


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return element.text_content() if isinstance(element, lxml.html.HtmlElement) else "".join(element.itertext())
