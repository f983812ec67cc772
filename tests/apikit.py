"""Shared pieces of the partner-API tests: a config with three sources in two merged feeds,
articles to store, and a client that knows its key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from service.config import Settings, settings_from_dict
from service.models import Article
from service.store.api_keys import ApiKeys

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
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


def article(n: int, source: str = "alpha", **fields: Any) -> Article:
    published = T0 + timedelta(minutes=n)
    base: dict[str, Any] = {
        "id": f"{n:032x}",
        "source_id": source,
        "url": f"https://{source}.example/{n}",
        "title": f"Story {n}",
        "summary": f"<p>Summary {n}</p>",
        "published": published,
        "updated": published,
        "first_seen": published,
    }
    return Article(**(base | fields))


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


MakeKey = Callable[..., Awaitable[str]]


def key_maker(keys: ApiKeys) -> MakeKey:
    async def make(name: str = "partner", **options: Any) -> str:
        _, token = await keys.create(name, NOW, **options)
        return token

    return make
