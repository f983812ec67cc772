"""Redis killed (SIGKILL) and started again while a real ``tributary run`` polls feeds that keep
publishing: the workers live through it and resume by themselves, ``/readyz`` says 503 and
then 200, feeds are served from their last rendering meanwhile, and every article the
publishers showed is stored exactly once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import aiohttp

from tests.reliability.faults import (
    GrowingFeeds,
    RedisServer,
    Run,
    alive,
    article_keys,
    created_entries,
    eventually,
    free_port,
    holds,
    stored,
    worker_beats,
    write_config,
)

SOURCES = 3
TOTAL = 40  # items each source publishes
WINDOW = 30  # newest items its feed shows
STEP = 0.3  # seconds between two items
OUTAGE_SECONDS = 4


def worker_noticed(run: Run) -> bool:
    return any(
        line.get("logger") == "tributary.worker" and line["msg"].startswith("redis unavailable") for line in run.lines()
    )


async def test_workers_live_through_a_redis_restart(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    feeds = GrowingFeeds(SOURCES, TOTAL, WINDOW, STEP)
    await feeds.start()
    port = free_port()
    config = write_config(tmp_path / "tributary.toml", port, feeds.port, SOURCES)
    run = Run(config, redis.url, tmp_path / "run.log")
    client = redis.client()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

            async def readyz(status: int) -> bool:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        return response.status == status
                except aiohttp.ClientError:
                    return False

            await eventually(lambda: readyz(200), 30, "/readyz 200 after start")
            feeds.begin()
            await eventually(holds(lambda: stored(client, SOURCES) >= SOURCES * 5), 20, "first articles stored")
            async with http.get(f"{base}/feeds/all.json") as response:
                assert response.status == 200  # rendered now, so it can be served while Redis is away
            worker_pid = worker_beats(client)[0]["pid"]

            redis.kill()
            killed = time.monotonic()
            await eventually(lambda: readyz(503), 10, "/readyz 503 with Redis down")
            async with http.get(f"{base}/feeds/all.json") as response:
                assert response.status == 200
                assert "redis-unavailable" in response.headers["Cache-Status"]
            async with http.get(f"{base}/feeds/all.json?q=never-rendered") as response:
                assert response.status == 503
                assert response.headers["Retry-After"].isdigit()
                assert (await response.json())["error"]["status"] == 503
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200  # liveness never asks Redis

            # Keep Redis away a while: the worker finds out, backs off, keeps retrying.
            await eventually(
                holds(lambda: time.monotonic() - killed > OUTAGE_SECONDS and worker_noticed(run)),
                20,
                "the worker noticed the outage",
            )
            redis.start()  # same port, same AOF
            client = redis.client()
            await eventually(lambda: readyz(200), 30, "/readyz 200 once Redis is back")
            await eventually(holds(lambda: feeds.finished), 30, "publishers done")
            await eventually(
                holds(lambda: stored(client, SOURCES) == SOURCES * TOTAL),
                30,
                f"all {SOURCES * TOTAL} articles stored (have {stored(client, SOURCES)})",
            )
            async with http.get(f"{base}/feeds/all.json") as response:
                assert response.status == 200 and "Cache-Status" not in response.headers
                assert len((await response.json())["items"]) == SOURCES * TOTAL

        # Exactly once: one article per published item, each created once in the change log.
        assert article_keys(client) == SOURCES * TOTAL
        created = Counter(created_entries(client))
        assert len(created) == SOURCES * TOTAL and set(created.values()) == {1}
        # The worker lived through it: same process, no restart by the supervisor.
        beats = worker_beats(client)
        assert [b["pid"] for b in beats] == [worker_pid] and alive(worker_pid)
        lines = run.lines()
        assert not [line for line in lines if "restarting in" in line["msg"]]
        # One line when Redis went away and one when it came back, per Outage, not one per call.
        away = Counter(line.get("pid") for line in lines if line["msg"].startswith("redis unavailable"))
        assert away and max(away.values()) <= 2, away
        assert any(line["msg"].startswith("redis is back") for line in lines)
    finally:
        children = run.children()
        code = run.stop()
        await feeds.stop()
        redis.stop()
    assert code == 0, run.log.read_text()[-3000:]
    assert not [pid for pid in children if alive(pid)]
