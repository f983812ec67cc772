"""OPML 2.0 subscription lists: the merged feeds we publish, and the sources we poll."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from service.config import Settings
from service.feeds.merge import feed_urls
from service.feeds.render.xmltext import safe_uri
from service.text import xml_safe


def _document(title: str) -> tuple[ET.Element, ET.Element]:
    opml = ET.Element("opml", version="2.0")
    ET.SubElement(ET.SubElement(opml, "head"), "title").text = xml_safe(title)
    return opml, ET.SubElement(opml, "body")


def render_feeds_opml(settings: Settings) -> bytes:
    """One outline per merged feed, pointing at its Atom rendering (RSS and JSON noted too)."""
    opml, body = _document("Tributary merged feeds")
    base = settings.server.base_url
    for feed in settings.feeds:
        urls = feed_urls(base, feed.name)
        ET.SubElement(
            body,
            "outline",
            type="rss",
            text=xml_safe(feed.title),
            title=xml_safe(feed.title),
            description=xml_safe(feed.description),
            xmlUrl=safe_uri(urls["atom"]),
            htmlUrl=safe_uri(f"{base}/feeds/{feed.name}"),
        )
    document: bytes = ET.tostring(opml, encoding="utf-8", xml_declaration=True)
    return document


def render_sources_opml(settings: Settings) -> bytes:
    """One outline per source, grouped under its first tag (untagged ones at top level)."""
    opml, body = _document("Tributary sources")
    folders: dict[str, ET.Element] = {}
    for source in settings.sources:
        parent = body
        if source.tags:
            tag = source.tags[0]
            if tag not in folders:
                folders[tag] = ET.SubElement(body, "outline", text=xml_safe(tag), title=xml_safe(tag))
            parent = folders[tag]
        parts = urlsplit(source.url)
        outline = ET.SubElement(
            parent,
            "outline",
            type="rss",
            text=xml_safe(source.display_name),
            title=xml_safe(source.display_name),
            xmlUrl=safe_uri(source.url),
            htmlUrl=safe_uri(f"{parts.scheme}://{parts.netloc}/"),
        )
        if source.tags:
            outline.set("category", xml_safe(",".join(source.tags)))
    document: bytes = ET.tostring(opml, encoding="utf-8", xml_declaration=True)
    return document
