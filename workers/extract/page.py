"""A fetched page → an lxml tree, refusing what is not an HTML page, plus CSS selector and small
tree helpers the extract modules share.

Pure: bytes (or text) in, tree out. Every refusal is a :class:`ParseError` labelled with the
page URL, so a bad article page is a logged, skipped page and never a crashed poll.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import lxml.html
from cssselect import GenericTranslator, SelectorError
from lxml import etree
from lxml.html import HtmlElement
from trafilatura import load_html

from service.errors import ErrorKind, ParseError

__all__ = [
    "MAX_PAGE_BYTES",
    "drop",
    "fold",
    "image_src",
    "link_share",
    "load_page",
    "select",
    "select_first",
    "xpath_of",
]

MAX_PAGE_BYTES = 5 * 1024 * 1024
"""Larger pages are refused: real articles are far smaller, and extraction time grows with size."""

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_SNIFF_BYTES = 2048
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|title|div|p)\b", re.I | re.S)


def load_page(page: bytes | str, url: str, *, content_type: str | None = None) -> lxml.html.HtmlElement:
    """Parse ``page`` (fetched from ``url``) as HTML, or raise :class:`ParseError`.

    Refused: an empty body, a body with NUL bytes (binary), a body over :data:`MAX_PAGE_BYTES`,
    and a declared non-HTML content type unless the body itself starts like HTML (servers
    mislabel pages more often than they serve PDFs as HTML).
    """
    data = page.encode("utf-8", "replace") if isinstance(page, str) else page
    if not data.strip():
        raise ParseError(url, ErrorKind.PARSE, "empty page")
    if len(data) > MAX_PAGE_BYTES:
        raise ParseError(url, ErrorKind.TOO_LARGE, f"page of {len(data)} bytes exceeds {MAX_PAGE_BYTES}")
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError(url, ErrorKind.PARSE, "binary body, not an HTML page")
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in HTML_TYPES and not _HTML_START.match(head):
        raise ParseError(url, ErrorKind.PARSE, f"not an HTML page (content type {media_type})")
    try:
        # trafilatura's loader guesses encodings well but turns down small fragments.
        tree = load_html(page)
        if tree is None:
            tree = lxml.html.document_fromstring(data)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(url, ErrorKind.PARSE, f"unreadable HTML: {exc}") from exc
    if tree is None or not isinstance(tree, lxml.html.HtmlElement):
        raise ParseError(url, ErrorKind.PARSE, "unreadable HTML")
    return tree


@lru_cache(maxsize=256)
def xpath_of(selector: str) -> str:
    """The XPath of a CSS selector (validated at config load; an invalid one raises ValueError)."""
    try:
        return GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from exc


def select(tree: etree._Element, selector: str) -> list[HtmlElement]:
    return elements(tree.xpath(xpath_of(selector)))


def select_first(tree: etree._Element, selector: str | None) -> HtmlElement | None:
    if not selector:
        return None
    found = select(tree, selector)
    return found[0] if found else None


def elements(found: object) -> list[HtmlElement]:
    """The elements in an XPath result (lxml types it as anything an XPath can return)."""
    return [e for e in found if isinstance(e, HtmlElement)] if isinstance(found, list) else []


def attributes(found: object) -> list[etree._ElementUnicodeResult]:
    """The attribute values in an XPath result, each knowing its name and element."""
    return [a for a in found if isinstance(a, etree._ElementUnicodeResult)] if isinstance(found, list) else []


def children(element: etree._Element, *tags: str) -> Iterator[HtmlElement]:
    """``element`` and its descendants (with one of ``tags``, if given), in document order."""
    return (e for e in element.iter(*tags) if isinstance(e, HtmlElement))


def text(element: etree._Element | None) -> str:
    """The text inside ``element``, tags dropped (comments too)."""
    return str(element.text_content()) if isinstance(element, HtmlElement) else ""


def fold(text: str | None) -> str:
    """Whitespace folded to single spaces."""
    return " ".join((text or "").split())


def drop(element: etree._Element | None) -> None:
    """Remove ``element`` but keep its tail text (lxml's drop_tree does; plain remove() does not)."""
    if isinstance(element, HtmlElement) and element.getparent() is not None:
        element.drop_tree()


def link_share(element: etree._Element, folded_text: str) -> float:
    """How much of ``folded_text`` (the element's text, folded) sits inside its links."""
    linked = sum(len(fold(text(link))) for link in children(element, "a"))
    return linked / len(folded_text) if folded_text else 0.0


def image_src(element: etree._Element) -> str | None:
    """The address an ``<img>`` (or ``<meta>``, ``<a>``) shows, lazy-loading attributes included."""
    for attribute in ("src", "data-src", "data-original", "content", "href"):
        value = element.get(attribute)
        if value and value.strip() and not value.strip().startswith("data:"):
            return value
    srcset = element.get("srcset") or element.get("data-srcset")
    return srcset.split(",")[0].split()[0] if srcset and srcset.strip() else None
