"""The aiohttp application factory: resources in ``cleanup_ctx``, typed app keys, JSON errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from service import hub_views, views
from service.appkeys import CLOCK, FEED_CACHE, REDIS, SETTINGS, STORE
from service.clock import Clock, utcnow
from service.config import Settings
from service.feed_cache import FeedCache
from service.store import Store

log = logging.getLogger(__name__)


@web.middleware
async def json_errors(request: web.Request, handler: views.Handler) -> web.StreamResponse:
    """Every error leaves as JSON ``{"error": {"status", "message"}}``; a bug is logged, not leaked."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return views.json_error(exc.status, exc.reason if exc.text is None or not exc.text.strip() else exc.text)
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return views.json_error(500, "internal server error")


def create_app(settings: Settings, *, redis_url: str | None = None, redis: Redis | None = None, clock: Clock = utcnow) -> web.Application:
    """Build the app; pass an open ``redis`` (tests) or a ``redis_url`` to open one."""
    if redis is None and redis_url is None:
        raise ValueError("create_app needs redis or redis_url")
    app = web.Application(middlewares=[json_errors])
    app[SETTINGS] = settings
    app[CLOCK] = clock

    async def resources(app: web.Application) -> AsyncIterator[None]:
        client = redis if redis is not None else Redis.from_url(redis_url)
        app[REDIS] = client
        app[STORE] = Store(client, settings)
        app[FEED_CACHE] = FeedCache(app[STORE], settings)
        yield
        if redis is None:
            await client.aclose()

    app.cleanup_ctx.append(resources)
    views.add_routes(app)
    hub_views.add_routes(app)
    return app
