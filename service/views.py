"""HTTP handlers: the feed list, merged feeds with conditional GET, health."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from service.appkeys import FEED_CACHE, REDIS, SETTINGS, STATIC_PAGES
from service.config import FeedConfig
from service.feed_cache import Rendered
from service.feed_query import QueryError, parse_query
from service.negotiate import choose_coding, negotiate_format
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
    """``/feeds/{name}.{fmt}``, with optional ``?tag= &source= &q= &limit= &cursor=``."""
    settings = request.app[SETTINGS]
    name, fmt = request.match_info["name"], request.match_info["fmt"]
    feed = settings.feed(name)
    if feed is None or fmt not in FORMATS:
        raise web.HTTPNotFound(text=f"no feed named {name!r} in format {fmt!r}")
    return await _serve_feed(request, feed, fmt, "Accept-Encoding")


async def negotiated_feed(request: web.Request) -> web.StreamResponse:
    """``/feeds/{name}``: the format ``Accept`` asks for (Atom by default, HTML for browsers)."""
    feed = request.app[SETTINGS].feed(request.match_info["name"])
    if feed is None:
        raise web.HTTPNotFound(text=f"no feed named {request.match_info['name']!r}")
    fmt = negotiate_format(request.headers.get("Accept"))
    return await _serve_feed(request, feed, fmt, "Accept, Accept-Encoding")


async def _serve_feed(request: web.Request, feed: FeedConfig, fmt: str, vary: str) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    query = None
    if request.query_string:
        try:
            query = parse_query(list(request.query.items()), feed)
        except QueryError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
    cache = request.app[FEED_CACHE]
    snapshot = cache.fresh(feed.name) if query is None else None
    if snapshot is None:
        snapshot = await cache.snapshot(feed, query)
    return conditional_response(request, snapshot.rendered(fmt), settings.server.cache_max_age, vary=vary)


async def index_page(request: web.Request) -> web.StreamResponse:
    """``/``: every merged feed with its subscribe links, for people."""
    rendered = request.app[STATIC_PAGES].get("index")
    return conditional_response(request, rendered, request.app[SETTINGS].server.cache_max_age)


async def feeds_opml(request: web.Request) -> web.StreamResponse:
    return conditional_response(request, request.app[STATIC_PAGES].get("feeds.opml"), request.app[SETTINGS].server.cache_max_age)


async def sources_opml(request: web.Request) -> web.StreamResponse:
    return conditional_response(request, request.app[STATIC_PAGES].get("sources.opml"), request.app[SETTINGS].server.cache_max_age)


def conditional_response(
    request: web.Request,
    rendered: Rendered,
    max_age: int,
    *,
    vary: str = "Accept-Encoding",
) -> web.Response:
    """200 with the body in the best accepted coding, or 304; headers come prebuilt."""
    coding = choose_coding(request.headers.get("Accept-Encoding"))
    if not_modified(request, rendered, rendered.last_modified):
        return web.Response(status=304, headers=rendered.headers(coding, max_age, vary, False))
    return web.Response(body=rendered.encoded(coding), headers=rendered.headers(coding, max_age, vary, True))


def not_modified(request: web.Request, rendered: Rendered, last_modified: datetime | None) -> bool:
    """RFC 9110 13.2.2: If-None-Match wins (weak comparison, any coding of the same content);
    If-Modified-Since only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if if_none_match == rendered.etag:  # the common case: a reader echoing our plain ETag
            return True
        return any(tag == "*" or rendered.same_content(tag) for tag in (t.strip() for t in if_none_match.split(",")))
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
    app.router.add_get("/", index_page)
    app.router.add_get("/feeds.opml", feeds_opml)
    app.router.add_get("/sources.opml", sources_opml)
    app.router.add_get(r"/feeds/{name:[a-z0-9][a-z0-9-]*}", negotiated_feed)
