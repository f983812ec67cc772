"""``/healthz`` and ``/readyz`` against the real app: liveness asks nothing of Redis; readiness
turns 503 when no worker heartbeat is fresh or ingest is stuck, and 200 again when fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from service import keys
from service.config import Settings, settings_from_dict
from service.readiness import decide_readiness
from service.store.heartbeats import Heartbeats
from service.web.app import create_app
from service.workers_status import WorkerHeartbeat
from tests.conftest import ManualClock

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def settings(**worker: object) -> Settings:
    return settings_from_dict(
        {
            "server": {"redis_timeout_seconds": 1},
            "worker": {"ingest_stuck_seconds": 300, **worker},
            "sources": [{"id": "alpha", "url": "https://alpha.example/feed.xml", "tags": ["t"]}],
            "feeds": [{"name": "all", "title": "All", "tags": ["t"]}],
        }
    )


def beat(at: datetime, pid: int = 100, period: float = 5) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        id=f"host-{pid}-1", host="host", pid=pid, started=NOW - timedelta(hours=1), beat=at, period_seconds=period
    )


@pytest.mark.parametrize(
    ("beats", "oldest_queued", "ready", "failing"),
    [
        ([beat(NOW - timedelta(seconds=3))], None, True, []),
        ([beat(NOW - timedelta(seconds=10))], None, True, []),  # exactly two periods old: still fresh
        ([beat(NOW - timedelta(seconds=11))], None, False, ["workers"]),
        ([beat(NOW - timedelta(seconds=60)), beat(NOW, pid=7)], None, True, []),  # one fresh is enough
        ([], None, False, ["workers"]),
        ([beat(NOW)], NOW - timedelta(seconds=299), True, []),
        ([beat(NOW)], NOW - timedelta(seconds=301), False, ["ingest"]),
    ],
)
def test_decide_readiness(
    beats: list[WorkerHeartbeat], oldest_queued: datetime | None, ready: bool, failing: list[str]
) -> None:
    verdict = decide_readiness(
        NOW, redis_error=None, beats=beats, queued=1 if oldest_queued else 0, oldest_queued=oldest_queued,
        ingest_max_age_seconds=300,
    )  # fmt: skip
    assert (verdict.status == "ready") is ready
    assert [name for name, check in verdict.checks if not check.ok] == failing


def test_without_redis_nothing_is_ready() -> None:
    verdict = decide_readiness(NOW, redis_error="Connection refused", ingest_max_age_seconds=300)
    assert verdict.status == "not ready"
    assert not verdict.checks.redis.ok and not verdict.checks.workers.ok and not verdict.checks.ingest.ok


async def test_readyz_follows_the_worker_heartbeats(redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(NOW)
    client: TestClient = await aiohttp_client(create_app(settings(), redis=redis, clock=clock, watch_changes=False))

    async def readyz() -> tuple[int, dict]:  # type: ignore[type-arg]
        response = await client.get("/readyz")
        return response.status, await response.json()

    status, body = await readyz()
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"]["workers"] == {
        "ok": False,
        "detail": "no worker has beaten: none is running",
        "fresh": 0,
        "known": 0,
        "newest_beat_age_seconds": None,
    }
    assert body["checks"]["redis"]["ok"] is True

    await Heartbeats(redis).beat(beat(clock.now))
    status, body = await readyz()
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["workers"]["fresh"] == 1

    clock.advance(11)  # past twice the 5 s period: the worker went silent
    status, body = await readyz()
    assert status == 503 and body["checks"]["workers"]["ok"] is False
    assert body["checks"]["workers"]["newest_beat_age_seconds"] == 11.0

    await Heartbeats(redis).beat(beat(clock.now))  # it beats again (or another one started)
    status, _ = await readyz()
    assert status == 200


async def test_readyz_fails_while_ingest_is_stuck(redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock(NOW)
    client: TestClient = await aiohttp_client(create_app(settings(), redis=redis, clock=clock, watch_changes=False))
    await Heartbeats(redis).beat(beat(clock.now))
    old_ms = int((clock.now - timedelta(seconds=400)).timestamp() * 1000)
    await redis.xadd(keys.INGEST_STREAM, {"source_id": "alpha", "articles": "[]"}, id=f"{old_ms}-0")
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503 and body["checks"]["ingest"]["ok"] is False
    assert body["checks"]["ingest"]["oldest_age_seconds"] == 400.0 and body["checks"]["ingest"]["queued"] == 1
    assert response.headers["Cache-Control"] == "no-store"

    await redis.xdel(keys.INGEST_STREAM, f"{old_ms}-0")  # stored at last
    assert (await client.get("/readyz")).status == 200


async def test_without_redis_healthz_is_200_readyz_503_and_unrendered_feeds_503(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings(), redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    client: TestClient = await aiohttp_client(app)
    response = await client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503 and body["checks"]["redis"]["ok"] is False
    assert body["checks"]["workers"]["detail"].startswith("unknown: Redis unavailable")
    response = await client.get("/feeds/all.atom")
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert (await response.json())["error"]["status"] == 503
