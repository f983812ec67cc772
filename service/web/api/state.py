"""Typed keys for what the partner API's sub-application holds."""

from __future__ import annotations

from aiohttp import web

from service.api.reads import Reader
from service.store.api_keys import ApiKey, ApiKeys
from service.web.api.notifier import ChangeNotifier

READER = web.AppKey("api_reader", Reader)
KEYS = web.AppKey("api_keys", ApiKeys)
NOTIFIER = web.AppKey("api_notifier", ChangeNotifier)
SPEC = web.AppKey("api_spec", bytes)  # the OpenAPI document, serialised once
DOCS_PAGE = web.AppKey("api_docs_page", bytes)

# Per request: set by the auth middleware.
REQUEST_KEY = web.RequestKey("api_key", ApiKey)
RATE_HEADERS = web.RequestKey("api_rate_headers", dict[str, str])

__all__ = ["DOCS_PAGE", "KEYS", "NOTIFIER", "RATE_HEADERS", "READER", "REQUEST_KEY", "SPEC", "ApiKey"]
