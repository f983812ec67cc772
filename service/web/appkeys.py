"""Typed keys for what the app holds."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from service.clock import Clock
from service.config import Settings
from service.feeds.cache import FeedCache, Rendered
from service.feeds.watch import FeedWatch
from service.store.articles import Store

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
STORE = web.AppKey("store", Store)
FEED_CACHE = web.AppKey("feed_cache", FeedCache)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
FEED_WATCH = web.AppKey("feed_watch", FeedWatch)
STATIC_PAGES = web.AppKey("static_pages", dict[str, Rendered])  # "/", the OPML lists: built once
