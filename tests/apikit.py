"""Shared pieces of the partner-API tests: a config with three sources in two merged feeds,
articles to store, and a client that knows its key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from service.config import Settings, settings_from_dict
from tests.test_feed_http import T0, article

__all__ = ["NOW", "T0", "ApiClient", "api_config", "api_settings", "article"]

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def api_config(**sections: Any) -> dict[str, Any]:
    return {
        "server": {"base_url": "http://feeds.test"},
        "storage": {"retention_per_source": 50},
        "sources": [
            {"id": "alpha", "url": "https://alpha.example/feed.xml", "name": "Alpha", "tags": ["tech"]},
            {"id": "beta", "url": "https://beta.example/rss", "name": "Beta", "tags": ["news"]},
            {"id": "gamma", "url": "https://gamma.example/rss", "name": "Gamma", "tags": ["news"]},
        ],
        "feeds": [
            {"name": "tech", "title": "Tech", "sources": ["alpha"]},
            {"name": "news", "title": "News", "tags": ["news"], "exclude_keywords": ["sponsored"]},
        ],
    } | sections


def api_settings(**sections: Any) -> Settings:
    return settings_from_dict(api_config(**sections))


class ApiClient:
    """The test client plus a Bearer key; ``get`` returns (status, JSON body or None, headers)."""

    def __init__(self, client: TestClient, token: str):
        self.client = client
        self.token = token

    async def get(self, path: str, token: str | None = None, **headers: str) -> tuple[int, Any, Any]:
        auth = {"Authorization": f"Bearer {token or self.token}"} if (token or self.token) else {}
        response = await self.client.get(path, headers={**auth, **headers})
        body = await response.read()
        data = None
        if body and response.content_type in ("application/json", "application/problem+json"):
            data = await response.json(content_type=None)
        return response.status, data, response.headers
