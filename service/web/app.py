"""The aiohttp application factory: resources in ``cleanup_ctx``, typed app keys, JSON errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.asyncio import Redis

from service.clock import Clock, utcnow
from service.config import Settings
from service.feeds.cache import HTML_TYPE, FeedCache, Rendered
from service.feeds.merge import feed_urls
from service.feeds.render.html import render_index
from service.feeds.render.opml import render_feeds_opml, render_sources_opml
from service.feeds.watch import FeedWatch
from service.store.articles import Store
from service.store.availability import REDIS_DOWN, Outage
from service.store.connect import listener_client, request_client
from service.store.source_registry import LiveSettings
from service.web import admin, feed_views, hub_endpoint, metrics_endpoint, probes, push_endpoint
from service.web.api import PREFIX as API_PREFIX
from service.web.api import create_api_app
from service.web.appkeys import (
    CLOCK,
    FEED_CACHE,
    FEED_WATCH,
    LIVE,
    OUTAGE,
    REDIS,
    REDIS_LISTENER,
    REQUEST_COUNTS,
    SETTINGS,
    STATIC_PAGES,
    STORE,
)
from service.web.bound_routes import BoundRoutes
from service.web.metrics_endpoint import RequestCounts

log = logging.getLogger("tributary.web")

OPML_TYPE = "text/x-opml; charset=utf-8"
MAX_REQUEST_LINE = 32 * 1024  # /api/v1/articles?ids= names up to 500 ids (16.5 kB)


def static_pages(settings: Settings) -> dict[str, Rendered]:
    """Pages that depend on the config only, rendered once per process."""
    base = settings.server.base_url
    index = render_index(
        "Tributary feeds",
        f"{base}/feeds.opml",
        [(f.title, f.description, f"{base}/feeds/{f.name}", feed_urls(base, f.name)) for f in settings.feeds],
    )
    return {
        "index": Rendered(index, HTML_TYPE, None),
        "feeds.opml": Rendered(render_feeds_opml(settings), OPML_TYPE, None),
        "sources.opml": Rendered(render_sources_opml(settings), OPML_TYPE, None),
    }


def create_app(
    settings: Settings,
    *,
    redis_url: str | None = None,
    redis: Redis | None = None,
    clock: Clock = utcnow,
    watch_changes: bool = True,
) -> web.Application:
    """Build the app; pass an open ``redis`` (tests) or a ``redis_url`` to open one.

    From a URL it opens two clients: one for requests, whose every call gives up after
    ``[server] redis_timeout_seconds``, and one for the subscriptions that wait for news.
    ``watch_changes`` subscribes to feed-change announcements so cached feeds are served with
    no Redis round trip; off, every feed request reads the feed's version (one GET).
    """
    if redis is None and redis_url is None:
        raise ValueError("create_app needs redis or redis_url")
    app = web.Application(handler_args={"max_line_size": MAX_REQUEST_LINE})
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[STATIC_PAGES] = static_pages(settings)
    app[OUTAGE] = Outage(log, "feeds are served from their last good rendering, other requests get 503")

    async def resources(app: web.Application) -> AsyncIterator[None]:
        timeout = settings.server.redis_timeout_seconds
        if redis is not None:
            client = listener = redis
        else:
            url = str(redis_url)
            client, listener = request_client(url, timeout), listener_client(url, timeout)
        app[REDIS] = client
        app[REDIS_LISTENER] = listener
        live = LiveSettings(settings, client)
        with contextlib.suppress(*REDIS_DOWN):  # the web server starts while Redis is away, too
            await live.refresh(force=True)
        app[LIVE] = live
        app[STORE] = store = Store(client, live.current)
        live.listeners.append(lambda current: setattr(store, "settings", current))
        hangup = _reload_on_sighup(live)
        watch = None
        if watch_changes:
            watch = FeedWatch(listener, app[STORE].changes_channel)
            await watch.start()
            app[FEED_WATCH] = watch
        app[FEED_CACHE] = FeedCache(app[STORE], settings, watch)
        yield
        hangup()
        if watch is not None:
            await watch.stop()
        if redis is None:
            await client.aclose()
            await listener.aclose()

    app.cleanup_ctx.append(resources)
    counts = app[REQUEST_COUNTS] = RequestCounts()
    routes = BoundRoutes(app, [counts.middleware])
    probes.add_routes(routes)
    feed_views.add_routes(routes)
    metrics_endpoint.add_routes(routes)
    hub_endpoint.add_routes(routes)
    push_endpoint.add_routes(routes)
    app.add_subapp(API_PREFIX, create_api_app(routes))
    admin.mount(routes, settings)
    feed_views.add_fallback_route(routes)
    return app


def _reload_on_sighup(live: LiveSettings) -> Callable[[], None]:
    """``SIGHUP`` (``kill -HUP``, or to ``tributary run``) asks every process to re-read the config
    file; returns the undo. A no-op where signals cannot be handled (not the main thread)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(live.registry.announce()))
    except (NotImplementedError, RuntimeError, ValueError):
        return lambda: None

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return undo
