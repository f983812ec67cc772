"""HTTP handlers: the feed list, merged feeds with conditional GET.

Every error leaves as JSON ``{"error": {"status", "message"}}`` and a bug is logged, not leaked.
That is done per handler (:func:`guarded`, inline in the feed handler) and by a last
catch-all route, not by an app middleware: a middleware wraps every request in one more
coroutine, about a tenth of the cached feed path's cost.

While Redis is away (down, or stalled: every call is bounded by ``[server]
redis_timeout_seconds``) a feed is served from its last good rendering, marked with
``Cache-Status`` (RFC 9211); what was never rendered gets 503 with ``Retry-After``. One log
line says the outage started and one that it ended, never one per request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from service.config import FeedConfig, Settings
from service.feeds.cache import Rendered, Snapshot
from service.feeds.merge import FORMATS, feed_urls
from service.feeds.query import FeedQuery, QueryError, parse_query
from service.feeds.render.xmltext import rfc3339
from service.logs import bind_request, request_id
from service.store.availability import REDIS_DOWN
from service.web.appkeys import FEED_CACHE, OUTAGE, REQUEST_COUNTS, SETTINGS, STATIC_PAGES
from service.web.bound_routes import BoundRoutes, allowed_elsewhere
from service.web.negotiate import choose_coding, negotiate_format

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
STALE = 'tributary; hit; detail="redis-unavailable"'  # Cache-Status of a last good rendering


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8", headers=headers)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": {"status": status, "message": message}}, status=status, headers=headers)


def error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON answer for an exception a handler let out (a redirect is re-raised)."""
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return json_error(exc.status, exc.reason if exc.text is None or not exc.text.strip() else exc.text)
    bind_request(request)
    if isinstance(exc, REDIS_DOWN):
        request.config_dict[OUTAGE].failed(exc)
        return unavailable()
    log.error("unhandled error serving %s %s", request.method, request.path, exc_info=exc)
    return json_error(500, "internal server error", headers={"X-Request-Id": request_id(request)})


def unavailable(what: str = "the store cannot be reached") -> web.Response:
    return json_error(
        503,
        f"{what}; try again in a few seconds",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


def guarded(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        bind_request(request)
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(request, exc)

    return wrapper


async def no_route(request: web.Request) -> web.StreamResponse:
    """The last route: 405 with ``Allow`` when another route has this path, else 404."""
    allowed = await allowed_elsewhere(request)
    if allowed:
        return json_error(405, f"{request.method} not allowed here", headers={"Allow": ",".join(sorted(allowed))})
    return json_error(404, "Not Found")


async def snapshot_or_last_good(
    request: web.Request, feed: FeedConfig, query: FeedQuery | None = None
) -> tuple[Snapshot | None, bool]:
    """The feed's current snapshot, or while Redis is away its last good one (None if it has
    none); the flag says which. While away, only one request per second waits to find out
    whether Redis is back; the others are answered at once."""
    bind_request(request)
    outage = request.app[OUTAGE]
    cache = request.app[FEED_CACHE]
    if outage.may_try():
        try:
            async with asyncio.timeout(request.app[SETTINGS].server.redis_timeout_seconds):
                snapshot = await cache.snapshot(feed, query)
        except REDIS_DOWN as exc:
            outage.failed(exc)
        else:
            outage.succeeded()
            return snapshot, False
    return cache.last_good(feed.name, query), True


async def feed_list(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    feeds = []
    stale = False
    for feed in settings.feeds:
        snapshot, last_good = await snapshot_or_last_good(request, feed)
        if snapshot is None:
            return unavailable(f"the store cannot be reached and feed {feed.name!r} was not rendered yet")
        stale = stale or last_good
        feeds.append(
            {
                "name": feed.name,
                "title": feed.title,
                "urls": feed_urls(settings.server.base_url, feed.name),
                "updated": rfc3339(snapshot.feed.updated) if snapshot.feed.updated else None,
                "items": len(snapshot.feed.items),
            }
        )
    return json_response({"feeds": feeds}, headers={"Cache-Status": STALE} if stale else None)


async def merged_feed(request: web.Request) -> web.StreamResponse:
    """``/feeds/{name}.{fmt}`` of a feed the config does not name, or a format we do not serve:
    the configured ones have exact routes (:func:`feed_route`)."""
    name, fmt = request.match_info["name"], request.match_info["fmt"]
    return json_error(404, f"no feed named {name!r} in format {fmt!r}")


async def negotiated_feed(request: web.Request) -> web.StreamResponse:
    return json_error(404, f"no feed named {request.match_info['name']!r}")


def feed_route(app: web.Application, feed: FeedConfig, fmt: str | None) -> Handler:
    """The handler of one configured feed in one format (None: the format ``Accept`` asks for,
    Atom by default, HTML for browsers), with optional ``?tag= &source= &q= &limit= &cursor=``.

    The feed, format and ``Vary`` are bound here rather than looked up per request: this is
    the hot path. A plain feed whose cached rendering is known current (:meth:`FeedCache.fresh`)
    is answered without a further coroutine; queries, a version to check and outages take
    :func:`_serve_feed`. Errors are caught and the answer counted for ``/metrics`` inline rather
    than by :func:`guarded` and the counting middleware, for the same reason."""
    vary = "Accept-Encoding" if fmt is not None else "Accept, Accept-Encoding"
    settings = app[SETTINGS]
    counts = app[REQUEST_COUNTS]

    async def serve(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse
        try:
            chosen = fmt if fmt is not None else negotiate_format(request.headers.get("Accept"))
            snapshot = None if request.query_string else app[FEED_CACHE].fresh(feed.name)
            if snapshot is None:
                response = await _serve_feed(request, app, feed, chosen, vary)
            else:
                response = _feed_response(request, snapshot, chosen, settings, vary)
        except Exception as exc:
            response = error_response(request, exc)
        counts.count(request, response.status)
        return response

    return serve


async def _serve_feed(
    request: web.Request, app: web.Application, feed: FeedConfig, fmt: str, vary: str
) -> web.StreamResponse:
    settings = app[SETTINGS]
    query = None
    if request.query_string:
        try:
            query = parse_query(list(request.query.items()), feed)
        except QueryError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
    snapshot, stale = await snapshot_or_last_good(request, feed, query)
    if snapshot is None:
        return unavailable(f"the store cannot be reached and feed {feed.name!r} was not rendered yet")
    response = _feed_response(request, snapshot, fmt, settings, vary)
    if stale:
        response.headers["Cache-Status"] = STALE
    return response


def _feed_response(request: web.Request, snapshot: Snapshot, fmt: str, settings: Settings, vary: str) -> web.Response:
    """The snapshot in ``fmt`` (200 or 304), readable by the configured origins for JSON Feed."""
    response = conditional_response(request, snapshot.rendered(fmt), settings.server.cache_max_age, vary=vary)
    if fmt == "json" and settings.api.public_feed_cors:
        allow_public_origin(request, response, settings.api.public_feed_cors)
    return response


def allow_public_origin(request: web.Request, response: web.Response, allowed: list[str]) -> None:
    """``[api] public_feed_cors``: let browser pages of these origins read the JSON Feed."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = response.headers.get("Vary", "") + ", Origin"
    if "Access-Control-Allow-Origin" in response.headers:
        response.headers["Access-Control-Expose-Headers"] = "ETag, Last-Modified, Link"


async def index_page(request: web.Request) -> web.StreamResponse:
    """``/``: every merged feed with its subscribe links, for people."""
    rendered = request.app[STATIC_PAGES]["index"]
    return conditional_response(request, rendered, request.app[SETTINGS].server.cache_max_age)


async def feeds_opml(request: web.Request) -> web.StreamResponse:
    return conditional_response(
        request, request.app[STATIC_PAGES]["feeds.opml"], request.app[SETTINGS].server.cache_max_age
    )


async def sources_opml(request: web.Request) -> web.StreamResponse:
    return conditional_response(
        request, request.app[STATIC_PAGES]["sources.opml"], request.app[SETTINGS].server.cache_max_age
    )


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
    If-Modified-Since only without it. aiohttp parses both headers: a list of ``W/``-flagged
    opaque tags that stops at the first malformed one, ``*`` only as the whole header, and an
    HTTP date read as GMT."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if if_none_match == rendered.etag:  # the common case, a reader echoing our plain ETag: skip the parse
            return True
        tags = request.if_none_match or ()
        return any(tag.value == "*" or rendered.same_content(tag.value) for tag in tags)
    since = request.if_modified_since
    return since is not None and last_modified is not None and int(last_modified.timestamp()) <= since.timestamp()


def add_routes(routes: BoundRoutes) -> None:
    """The configured feeds get exact paths, which the router looks up (one dict lookup) before
    trying patterns (a regex match and a decoded ``match_info`` per request); the patterns answer
    only for unknown feeds and formats. The exact routes take no middleware (:func:`feed_route`)
    and count on ``/metrics`` as their pattern."""
    app = routes.app
    routes.add_get("/feeds", guarded(feed_list))
    pattern = routes.add_get(r"/feeds/{name}.{fmt:[a-z]+}", merged_feed)
    negotiated = routes.add_get(r"/feeds/{name:[a-z0-9][a-z0-9-]*}", negotiated_feed)
    counts = app[REQUEST_COUNTS]
    for feed in app[SETTINGS].feeds:
        for fmt in FORMATS:
            exact = routes.add_get(f"/feeds/{feed.name}.{fmt}", feed_route(app, feed, fmt), bound=False)
            counts.label(exact, pattern.canonical)
        exact = routes.add_get(f"/feeds/{feed.name}", feed_route(app, feed, None), bound=False)
        counts.label(exact, negotiated.canonical)
    routes.add_get("/", guarded(index_page))
    routes.add_get("/feeds.opml", guarded(feeds_opml))
    routes.add_get("/sources.opml", guarded(sources_opml))


def add_fallback_route(routes: BoundRoutes) -> None:
    """Registered after every other route: unknown paths and methods get JSON errors too."""
    routes.add_catch_all(no_route)
