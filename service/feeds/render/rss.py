"""RSS 2.0 rendering of a merged feed, with the Atom, content and Dublin Core extensions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from service.feeds.merge import MergedFeed
from service.feeds.render.xmltext import (
    GENERATOR,
    UNKNOWN_MEDIA_TYPE,
    absolute_uri,
    article_source,
    article_uri,
    enclosure_type,
    paging_links,
    rfc822,
    rfc3339,
    safe_uri,
    web_uri,
)
from service.models import Article
from service.text import xml_safe

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"

# Prefixed tags under literal xmlns declarations on <rss>, rather than ET.register_namespace:
# its prefix map is process-wide, so another module could change our bytes.
_NAMESPACES = {"xmlns:atom": ATOM_NS, "xmlns:content": CONTENT_NS, "xmlns:dc": DC_NS}


def render_rss(feed: MergedFeed) -> bytes:
    rss = ET.Element("rss", _NAMESPACES, version="2.0")
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", feed.title)
    ET.SubElement(channel, "link").text = safe_uri(feed.home_url)
    _text(channel, "description", feed.description)
    ET.SubElement(channel, "atom:link", href=safe_uri(feed.self_urls["rss"]), rel="self", type="application/rss+xml")
    for rel, href in paging_links(feed, "rss"):
        ET.SubElement(channel, "atom:link", href=safe_uri(href), rel=rel)
    if feed.updated is not None:
        ET.SubElement(channel, "lastBuildDate").text = rfc822(feed.updated)
    ET.SubElement(channel, "generator").text = GENERATOR
    for article in feed.items:
        _item(channel, feed, article)
    document: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return document


def _item(channel: ET.Element, feed: MergedFeed, article: Article) -> None:
    item = ET.SubElement(channel, "item")
    _text(item, "title", article.title)
    url = web_uri(article.url)
    if url is not None:
        ET.SubElement(item, "link").text = url
    description = article.summary or article.content
    if description:
        _text(item, "description", description)
    if article.content:
        _text(item, "content:encoded", article.content)
    ET.SubElement(item, "guid", isPermaLink="false").text = article_uri(article)
    ET.SubElement(item, "pubDate").text = rfc822(article.published)
    ET.SubElement(item, "atom:updated").text = rfc3339(article.updated)
    for author in article.authors:
        if author.name:
            _text(item, "dc:creator", author.name)
    for tag in article.tags:
        _text(item, "category", tag)
    for enclosure in article.enclosures:
        enclosure_url = web_uri(enclosure.url)
        if enclosure_url is None:
            continue
        # RSS requires all three attributes; 0 is the conventional "length unknown".
        ET.SubElement(
            item,
            "enclosure",
            url=enclosure_url,
            length=str(enclosure.length or 0),
            type=enclosure_type(enclosure) or UNKNOWN_MEDIA_TYPE,
        )
    source = article_source(feed, article)
    source_link = absolute_uri(source.link)
    if source_link is not None:  # RSS <source> must carry its feed's url
        ET.SubElement(item, "source", url=source_link).text = xml_safe(source.name)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = xml_safe(text)
