"""Redis frozen (SIGSTOP: connections open, no answers) under a real ``tributary run``: every web
answer comes within ``[server] redis_timeout_seconds`` (plus a margin), feeds from their last
rendering, what was never rendered as 503 with ``Retry-After``, ``/healthz`` at once; once
Redis thaws, ``/readyz`` is 200 again and feeds are current."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from tests.reliability.faults import (
    GrowingFeeds,
    RedisServer,
    Run,
    eventually,
    free_port,
    holds,
    stored,
    write_config,
)

REDIS_TIMEOUT = 1.0  # write_config's [server] redis_timeout_seconds
MARGIN = 2.0  # a loaded machine's scheduling, not Redis: without the timeout these waits are endless


async def test_web_answers_within_its_timeout_while_redis_is_frozen(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    client = redis.client()
    feeds = GrowingFeeds(1, 5, 10, 0.1)
    await feeds.start()
    feeds.begin()
    port = free_port()
    config = write_config(tmp_path / "tributary.toml", port, feeds.port, 1)
    run = Run(config, redis.url, tmp_path / "run.log")
    base = f"http://127.0.0.1:{port}"
    frozen = False
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def timed(path: str) -> tuple[int, dict[str, str], float]:
                started = time.monotonic()
                async with http.get(base + path) as response:
                    await response.read()
                    return response.status, dict(response.headers), time.monotonic() - started

            async def status_is(path: str, status: int) -> bool:
                try:
                    return (await timed(path))[0] == status
                except aiohttp.ClientError:
                    return False

            await eventually(lambda: status_is("/readyz", 200), 30, "/readyz 200 after start")
            await eventually(holds(lambda: feeds.finished and stored(client, 1) == 5), 20, "articles stored")
            assert (await timed("/feeds/all.atom"))[0] == 200  # rendered, so it can be served frozen

            redis.freeze()
            frozen = True
            status, _, took = await timed("/healthz")
            assert status == 200 and took < MARGIN
            status, headers, took = await timed("/readyz")
            assert status == 503 and took < REDIS_TIMEOUT + MARGIN
            status, headers, took = await timed("/feeds/all.atom?q=never-rendered")
            assert status == 503 and headers["Retry-After"].isdigit() and took < REDIS_TIMEOUT + MARGIN

            async def served_stale() -> bool:
                # a cached feed is trusted a few seconds without asking Redis; then it is marked stale
                status, headers, took = await timed("/feeds/all.atom")
                assert status == 200 and took < REDIS_TIMEOUT + MARGIN, (status, took)
                return "redis-unavailable" in headers.get("Cache-Status", "")

            await eventually(served_stale, 15, "the feed served from its last rendering")
            status, _, took = await timed("/feeds")
            assert status == 200 and took < REDIS_TIMEOUT + MARGIN

            redis.thaw()
            frozen = False
            await eventually(lambda: status_is("/readyz", 200), 20, "/readyz 200 once Redis thaws")

            async def current() -> bool:
                status, headers, _ = await timed("/feeds/all.atom")
                return status == 200 and "Cache-Status" not in headers

            await eventually(current, 10, "the feed served current again")
    finally:
        if frozen:
            redis.thaw()
        run.stop()
        await feeds.stop()
        redis.stop()
    lines = run.lines()
    assert not [line for line in lines if "exc" in line and line.get("logger", "").startswith("service.web")]
