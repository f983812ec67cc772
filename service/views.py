"""HTTP handlers: the feed list, merged feeds with conditional GET, health."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from service.appkeys import FEED_CACHE, REDIS, SETTINGS
from service.feed_cache import Rendered
from service.merge import FORMATS, feed_urls
from service.render.xmltext import rfc3339

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8", headers=headers)


def json_error(status: int, message: str) -> web.Response:
    return json_response({"error": {"status": status, "message": message}}, status=status)


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[REDIS].ping()
    except (RedisError, OSError) as exc:
        return json_response({"status": "unavailable", "redis": str(exc)}, status=503)
    return json_response({"status": "ok"})


async def feed_list(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    cache = request.app[FEED_CACHE]
    feeds = []
    for feed in settings.feeds:
        snapshot = await cache.snapshot(feed)
        feeds.append(
            {
                "name": feed.name,
                "title": feed.title,
                "urls": feed_urls(settings.server.base_url, feed.name),
                "updated": rfc3339(snapshot.feed.updated) if snapshot.feed.updated else None,
                "items": len(snapshot.feed.items),
            }
        )
    return json_response({"feeds": feeds})


async def merged_feed(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    name, fmt = request.match_info["name"], request.match_info["fmt"]
    feed = settings.feed(name)
    if feed is None or fmt not in FORMATS:
        raise web.HTTPNotFound(text=f"no feed named {name!r} in format {fmt!r}")
    snapshot = await request.app[FEED_CACHE].snapshot(feed)
    return conditional_response(request, snapshot.rendered(fmt), settings.server.cache_max_age)


def conditional_response(request: web.Request, rendered: Rendered, max_age: int) -> web.Response:
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
    }
    if rendered.last_modified is not None:
        headers["Last-Modified"] = format_datetime(rendered.last_modified, usegmt=True)
    if not_modified(request, rendered.etag, rendered.last_modified):
        return web.Response(status=304, headers=headers)
    body = rendered.body
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = rendered.gzip
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = rendered.content_type
    return web.Response(body=body, headers=headers)


def not_modified(request: web.Request, etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in candidates or etag in candidates
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since and last_modified is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and int(last_modified.timestamp()) <= int(since.timestamp())
    return False


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/feeds", feed_list)
    app.router.add_get(r"/feeds/{name}.{fmt:[a-z]+}", merged_feed)
