"""Typed keys for what the app holds."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from service.clock import Clock
from service.config import Settings
from service.feeds.cache import FeedCache, Rendered
from service.feeds.watch import FeedWatch
from service.store.articles import Store
from service.store.availability import Outage
from service.store.source_registry import LiveSettings

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)  # request client: every call bounded by [server] redis_timeout_seconds
REDIS_LISTENER = web.AppKey("redis_listener", Redis)  # pub/sub and blocking reads: no read timeout
OUTAGE = web.AppKey("outage", Outage)  # whether Redis answers, as this process sees it
STORE = web.AppKey("store", Store)
FEED_CACHE = web.AppKey("feed_cache", FeedCache)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
FEED_WATCH = web.AppKey("feed_watch", FeedWatch)
STATIC_PAGES = web.AppKey("static_pages", dict[str, Rendered])  # "/", the OPML lists: built once
LIVE = web.AppKey("live_settings", LiveSettings)  # the settings with the run-time sources, for operators' pages
REQUEST_COUNTS: web.AppKey[Any] = web.AppKey("request_counts")  # service.web.metrics_endpoint.RequestCounts
