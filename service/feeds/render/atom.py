"""Atom 1.0 (RFC 4287) rendering of a merged feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from service.feeds.merge import MergedFeed
from service.feeds.render.xmltext import (
    GENERATOR,
    absolute_uri,
    article_source,
    article_uri,
    enclosure_type,
    paging_links,
    rfc3339,
    safe_uri,
    web_uri,
)
from service.models import Article
from service.text import xml_safe

ATOM_NS = "http://www.w3.org/2005/Atom"

# An empty feed still needs an <updated>; a fixed instant keeps the bytes reproducible.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

# The patterns the RFC 4287 schema puts on language tags and e-mail addresses (XSD "." excludes
# CR and LF).
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
_EMAIL = re.compile(r"[^\r\n]+@[^\r\n]+")


def render_atom(feed: MergedFeed) -> bytes:
    # Unqualified tags under a literal xmlns: ElementTree's default_namespace option refuses
    # unprefixed attributes, and its prefix map is process-wide state other code can change.
    root = ET.Element("feed", xmlns=ATOM_NS)
    ET.SubElement(root, "id").text = f"urn:tributary:feed:{safe_uri(feed.name)}"
    ET.SubElement(root, "title", type="text").text = xml_safe(feed.title)
    if feed.description:
        ET.SubElement(root, "subtitle", type="text").text = xml_safe(feed.description)
    updated = feed.updated or max((a.updated for a in feed.items), default=EMPTY_FEED_UPDATED)
    ET.SubElement(root, "updated").text = rfc3339(updated)
    ET.SubElement(root, "link", rel="self", type="application/atom+xml", href=safe_uri(feed.self_urls["atom"]))
    ET.SubElement(root, "link", rel="alternate", type="text/html", href=safe_uri(feed.home_url))
    for rel, href in paging_links(feed, "atom"):
        ET.SubElement(root, "link", rel=rel, href=safe_uri(href))
    ET.SubElement(root, "generator").text = GENERATOR
    # Every entry needs an author of its own or of its feed; a feed author covers those without.
    ET.SubElement(ET.SubElement(root, "author"), "name").text = xml_safe(feed.title)
    for article in feed.items:
        _entry(root, feed, article)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _entry(root: ET.Element, feed: MergedFeed, article: Article) -> None:
    entry = ET.SubElement(root, "entry")
    if article.language and _LANGUAGE_TAG.fullmatch(article.language):
        entry.set("xml:lang", article.language)
    ET.SubElement(entry, "id").text = article_uri(article)
    ET.SubElement(entry, "title", type="text").text = xml_safe(article.title)
    url = web_uri(article.url)
    if url is not None:
        ET.SubElement(entry, "link", rel="alternate", href=url)
    ET.SubElement(entry, "published").text = rfc3339(article.published)
    ET.SubElement(entry, "updated").text = rfc3339(article.updated)
    for author in article.authors:
        if author.name:
            person = ET.SubElement(entry, "author")
            ET.SubElement(person, "name").text = xml_safe(author.name)
            uri = web_uri(author.url)
            if uri is not None:
                ET.SubElement(person, "uri").text = uri
            email = xml_safe(author.email or "")
            if _EMAIL.fullmatch(email):
                ET.SubElement(person, "email").text = email
    for tag in article.tags:
        ET.SubElement(entry, "category", term=xml_safe(tag))
    summary, content = article.summary or None, article.content or None
    if url is None and content is None:
        # An entry without an alternate link must carry content (RFC 4287 4.1.2).
        summary, content = None, summary or ""
    if summary:
        ET.SubElement(entry, "summary", type="html").text = xml_safe(summary)
    if content is not None:
        ET.SubElement(entry, "content", type="html").text = xml_safe(content)
    for enclosure in article.enclosures:
        href = web_uri(enclosure.url)
        if href is None:
            continue
        link = ET.SubElement(entry, "link", rel="enclosure", href=href)
        media_type = enclosure_type(enclosure)
        if media_type is not None:
            link.set("type", media_type)
        if enclosure.length is not None:
            link.set("length", str(enclosure.length))
    source = article_source(feed, article)
    element = ET.SubElement(entry, "source")
    ET.SubElement(element, "id").text = f"urn:tributary:source:{safe_uri(source.id)}"
    ET.SubElement(element, "title", type="text").text = xml_safe(source.name)
    # The source feed's own <updated> is not kept; it changed at the latest when this entry did.
    ET.SubElement(element, "updated").text = rfc3339(article.updated)
    source_link = absolute_uri(source.link)
    if source_link is not None:
        # The source's link is the feed Tributary polls, hence "self" rather than "alternate".
        ET.SubElement(element, "link", rel="self", href=source_link)
