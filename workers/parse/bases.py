"""What a relative reference in an RSS or Atom document resolves against: the one rule every XML
parser of ours follows (today :mod:`workers.parse.xml_adapter`; any faster parser must agree).

1. In the scope of an ``xml:base``, against that (a relative ``xml:base`` itself resolves by
   these rules, against the base its element would otherwise have).
2. The feed's own ``<link>``: against the feed URL.
3. Everything of an RSS item (any RSS version): against the channel's ``<link>``, resolved
   against the feed URL; the feed URL itself when the channel has no http(s) link. That covers
   the item's link, enclosures, Media RSS and iTunes URLs, author URIs and the links inside its
   description and content. A wire feed at ``feeds.wire.example`` that carries
   ``site.example``'s stories with relative links names them at ``site.example``, so the story
   is recognised as the one the site's own feed carries (Miniflux's RSS adapter does the same).
4. Everything of an Atom entry: against the feed URL, the document's own address (RFC 4287).
5. Except identity: an RSS ``<guid>`` that is a permalink (``isPermaLink`` absent or true) and an
   Atom ``<id>`` resolve against the feed URL (rule 1 still applies), whatever rule 3 says, and
   a guid with ``isPermaLink="false"`` is never resolved. Article ids derive from guids, so a
   stored article keeps its id.

"The feed URL" is the source's configured URL, not the target of a redirect, for the same reason.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from service.urls import join_url

__all__ = ["item_base", "resolve"]

_WEB_SCHEMES = ("http", "https")


def item_base(version: str | None, feed_url: str, feed_link: str | None) -> str:
    """The base of an item's relative references outside any ``xml:base`` (rules 3 and 4).

    ``version`` is feedparser's name of the format (``rss20``, ``atom10``…); ``feed_link`` is the
    channel's ``<link>`` already resolved against ``feed_url`` (rule 2).
    """
    if (version or "").startswith("atom") or not feed_link:
        return feed_url
    try:
        scheme, host = urlsplit(feed_link)[:2]
    except ValueError:
        return feed_url
    return feed_link if scheme.lower() in _WEB_SCHEMES and host else feed_url


def resolve(base: str, reference: str) -> str | None:
    """``reference`` made absolute against ``base``; None when it cannot be parsed."""
    try:
        return join_url(base, reference)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
