"""JSON Feed 1.1 rendering of a merged feed, with a ``_tributary`` extension for provenance."""

from __future__ import annotations

import json
from typing import Any

from service.feeds.merge import MergedFeed
from service.feeds.render.xmltext import (
    UNKNOWN_MEDIA_TYPE,
    absolute_uri,
    article_source,
    article_uri,
    enclosure_type,
    rfc3339,
    safe_uri,
    web_uri,
)
from service.models import Article, Enclosure, SourceRef
from service.text import plain_text, xml_safe

VERSION = "https://jsonfeed.org/version/1.1"


def render_jsonfeed(feed: MergedFeed) -> bytes:
    # Text is cleaned as for XML so an item reads the same in every format; it also drops
    # lone surrogates, which UTF-8 cannot encode.
    document = {
        "version": VERSION,
        "title": xml_safe(feed.title),
        "home_page_url": safe_uri(feed.home_url),
        "feed_url": safe_uri(feed.self_urls["json"]),
        "description": xml_safe(feed.description),
        **({"next_url": safe_uri(feed.next_urls["json"])} if feed.next_urls else {}),
        **({"hubs": [{"type": "WebSub", "url": safe_uri(feed.hub_url)}]} if feed.hub_url else {}),
        "_tributary": {
            "updated": rfc3339(feed.updated) if feed.updated is not None else None,
            "name": xml_safe(feed.name),
        },
        "items": [_item(feed, article) for article in feed.items],
    }
    # Insertion order, not sort_keys: the spec asks for "version" first.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _item(feed: MergedFeed, article: Article) -> dict[str, Any]:
    item: dict[str, Any] = {"id": article_uri(article)}
    url = web_uri(article.url)
    if url is not None:
        item["url"] = url
    item["title"] = xml_safe(article.title)
    body = article.content or article.summary
    if body:
        item["content_html"] = xml_safe(body)
    else:
        item["content_text"] = ""  # an item must have content_html or content_text
    if article.summary:
        summary = plain_text(article.summary)
        if summary:
            item["summary"] = summary
    image_url = web_uri(article.image.url if article.image else None)
    if image_url is not None:
        item["image"] = image_url
    item["date_published"] = rfc3339(article.published)
    item["date_modified"] = rfc3339(article.updated)
    authors = [_author(a.name, a.url) for a in article.authors if a.name]
    if authors:
        item["authors"] = authors
    if article.tags:
        item["tags"] = [xml_safe(tag) for tag in article.tags]
    attachments = [_attachment(e) for e in article.enclosures]
    if any(attachments):
        item["attachments"] = [a for a in attachments if a is not None]
    if article.language:
        item["language"] = xml_safe(article.language)
    source = article_source(feed, article)
    extension: dict[str, Any] = {
        "source": {
            "id": xml_safe(source.id),
            "name": xml_safe(source.name),
            "url": absolute_uri(source.link),
        }
    }
    # Every source that carried the item (cross-source provenance); an article stored before
    # provenance was recorded names its own source.
    refs = article.sources or (
        SourceRef(id=source.id, name=source.name, link=source.link, first_seen=article.first_seen),
    )
    extension["sources"] = [
        {
            "id": xml_safe(ref.id),
            "name": xml_safe(ref.name),
            "url": absolute_uri(ref.link),
            "first_seen": rfc3339(ref.first_seen),
        }
        for ref in refs
    ]
    image = article.image
    if image is not None and (image.caption or image.credit):
        extension["image"] = {
            "caption": xml_safe(image.caption) if image.caption else None,
            "credit": xml_safe(image.credit) if image.credit else None,
        }
    item["_tributary"] = extension
    return item


def _author(name: str, url: str | None) -> dict[str, str]:
    author = {"name": xml_safe(name)}
    uri = web_uri(url)
    if uri is not None:
        author["url"] = uri
    return author


def _attachment(enclosure: Enclosure) -> dict[str, Any] | None:
    href = web_uri(enclosure.url)
    if href is None:
        return None
    attachment: dict[str, Any] = {"url": href, "mime_type": enclosure_type(enclosure) or UNKNOWN_MEDIA_TYPE}
    if enclosure.length is not None:
        attachment["size_in_bytes"] = enclosure.length
    return attachment
