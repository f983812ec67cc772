"""Article links on a news listing page."""

from __future__ import annotations

from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html

from workers.extract.page import attributes, elements, load_page, select

__all__ = ["extract_links"]

_WEB_SCHEMES = frozenset({"http", "https"})


def extract_links(listing_html: bytes | str | lxml.html.HtmlElement, base_url: str, selector: str) -> list[str]:
    """Absolute http(s) URLs of the links ``selector`` matches, in page order, each once.

    ``selector`` may match the ``<a>`` itself or an element around it (its first ``<a href>``
    is used). Fragments are dropped (``#comments`` is the same article); a ``<base href>``
    is honoured; ``javascript:``, ``mailto:`` and empty links are skipped. Raises
    :class:`ParseError` for a body that is not an HTML page.
    """
    tree = listing_html if isinstance(listing_html, lxml.html.HtmlElement) else load_page(listing_html, base_url)
    base = _document_base(tree, base_url)
    links: dict[str, None] = {}
    for element in select(tree, selector):
        anchor = (
            element if element.get("href") is not None else next(iter(elements(element.xpath(".//*[@href]"))), None)
        )
        href = (anchor.get("href") or "").strip() if anchor is not None else ""
        if not href:
            continue
        try:
            url, _fragment = urldefrag(urljoin(base, href))
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            continue
        if scheme in _WEB_SCHEMES:
            links.setdefault(url, None)
    return list(links)


def _document_base(tree: lxml.html.HtmlElement, base_url: str) -> str:
    for href in attributes(tree.xpath("//base/@href")):
        try:
            return urljoin(base_url, href.strip())
        except ValueError:
            break
    return base_url
