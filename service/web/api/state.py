"""Typed keys for what the partner API's sub-application holds."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from service.api.cursors import CursorSigner
from service.api.reads import Reader
from service.store.api_keys import ApiKey, ApiKeys, cursor_secret
from service.web.api.notifier import ChangeNotifier


class CursorKey:
    """The secret that signs cursors lives in Redis (unless configured): it is read at start, or,
    when the web server started while Redis was away, by the first keyed request that finds it
    back. Until then the reader signs with a random throwaway key that no request ever uses."""

    def __init__(self, configured: str | None) -> None:
        self.configured = configured
        self.loaded = False

    async def load_into(self, reader: Reader, redis: Redis) -> None:
        if not self.loaded:
            reader.signer = CursorSigner(await cursor_secret(redis, self.configured))
            self.loaded = True


READER = web.AppKey("api_reader", Reader)
KEYS = web.AppKey("api_keys", ApiKeys)
NOTIFIER = web.AppKey("api_notifier", ChangeNotifier)
SPEC = web.AppKey("api_spec", bytes)  # the OpenAPI document, serialised once
DOCS_PAGE = web.AppKey("api_docs_page", bytes)
CURSOR_KEY = web.AppKey("api_cursor_key", CursorKey)

# Per request: set by the auth middleware.
REQUEST_KEY = web.RequestKey("api_key", ApiKey)
RATE_HEADERS = web.RequestKey("api_rate_headers", dict[str, str])

__all__ = ["CURSOR_KEY", "DOCS_PAGE", "KEYS", "NOTIFIER", "RATE_HEADERS", "READER", "REQUEST_KEY", "SPEC", "ApiKey"]
