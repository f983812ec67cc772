"""Pure renderers: a :class:`~service.feeds.merge.MergedFeed` in, the bytes of one feed format out.

No clock, no I/O: the same merged feed always renders to the same bytes, so the result can be
cached and served with a stable ETag. Every format gives an item the same id
(``urn:uuid:`` + the article id), link, text and dates.
"""

from __future__ import annotations

from collections.abc import Callable

from service.feeds.merge import MergedFeed
from service.feeds.render.atom import render_atom
from service.feeds.render.jsonfeed import render_jsonfeed
from service.feeds.render.rss import render_rss
from service.feeds.render.xmltext import article_uri, rfc822, rfc3339
from service.text import xml_safe

__all__ = [
    "RENDERERS",
    "article_uri",
    "render",
    "render_atom",
    "render_jsonfeed",
    "render_rss",
    "rfc822",
    "rfc3339",
    "xml_safe",
]

RENDERERS: dict[str, Callable[[MergedFeed], bytes]] = {
    "rss": render_rss,
    "atom": render_atom,
    "json": render_jsonfeed,
}


def render(feed: MergedFeed, fmt: str) -> bytes:
    """``feed`` as ``fmt`` ("rss", "atom" or "json"; content types in ``FORMATS``)."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown feed format {fmt!r}; expected one of {', '.join(RENDERERS)}") from None
    return renderer(feed)
