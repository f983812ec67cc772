"""Shared fixtures: a real Redis (``REDIS_URL`` or embedded) on a dedicated, flushed DB,
a local feed server, a manual clock. Nothing here mocks Redis or HTTP.

Corpora of real feeds and pages are read in place from ``../shared/corpora`` beside the
repository (:data:`CORPORA`); tests that need them skip, naming that path, where it is absent.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

from service.store.embedded_redis import EmbeddedRedis
from tests.feedserver import FeedServer

DATA = Path(__file__).parent / "data"
TEST_DB = int(os.environ.get("TRIBUTARY_TEST_DB", "13"))
REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = REPO_ROOT.parent / "shared" / "corpora"


def corpus(*parts: str) -> Path:
    """``CORPORA/parts``; skips the calling test, naming the expected path, where it is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus not found: expected {path} (../shared/corpora beside the repository)")
    return path


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db=")) + f"&db={db}"
        return urlunsplit(parts._replace(query=query.lstrip("&")))
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``REDIS_URL`` (CI) on a dedicated DB, else an embedded redis-server for the session."""
    if os.environ.get("REDIS_URL"):
        yield with_db(os.environ["REDIS_URL"], TEST_DB)
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    embedded.start()
    try:
        yield with_db(embedded.url, TEST_DB)
    finally:
        embedded.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


class ManualClock:
    """The injected clock: tests move time explicitly instead of sleeping."""

    def __init__(self, start: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
