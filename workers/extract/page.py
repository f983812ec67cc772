"""A fetched page → an lxml tree, refusing what is not an HTML page, plus CSS selector helpers.

Pure: bytes (or text) in, tree out. Every refusal is a :class:`ParseError` labelled with the
page URL, so a bad article page is a logged, skipped page and never a crashed poll.
"""

from __future__ import annotations

import re
from functools import lru_cache

import lxml.html
from cssselect import GenericTranslator, SelectorError
from lxml import etree
from trafilatura import load_html

from service.errors import ErrorKind, ParseError

__all__ = ["MAX_PAGE_BYTES", "fold", "load_page", "select", "select_first", "xpath_of"]

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


def select(tree: etree._Element, selector: str) -> list[etree._Element]:
    return [e for e in tree.xpath(xpath_of(selector)) if isinstance(e, etree._Element)]


def select_first(tree: etree._Element, selector: str | None) -> etree._Element | None:
    if not selector:
        return None
    found = select(tree, selector)
    return found[0] if found else None


def fold(text: str | None) -> str:
    """Whitespace folded to single spaces."""
    return " ".join((text or "").split())
