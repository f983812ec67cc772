"""A worker SIGKILLed under ``tributary run``: the supervisor says so loudly and starts another,
ingest resumes, every article is stored exactly once, and Ctrl-C still stops everything in
order with no process left behind."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import aiohttp

from tests.reliability.faults import (
    GrowingFeeds,
    RedisServer,
    Run,
    alive,
    created_entries,
    eventually,
    free_port,
    holds,
    stored,
    worker_beats,
    write_config,
)

SOURCES = 2
TOTAL = 30
WINDOW = 30
STEP = 0.25


async def test_a_killed_worker_is_restarted_and_ingest_resumes(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    client = redis.client()
    feeds = GrowingFeeds(SOURCES, TOTAL, WINDOW, STEP)
    await feeds.start()
    port = free_port()
    config = write_config(tmp_path / "tributary.toml", port, feeds.port, SOURCES)
    run = Run(config, redis.url, tmp_path / "run.log")
    try:

        async def one_beat() -> list[int]:
            return [b["pid"] for b in worker_beats(client)]

        first = (await eventually(one_beat, 30, "the worker's first heartbeat"))[0]
        feeds.begin()
        await eventually(holds(lambda: stored(client, SOURCES) >= 4), 20, "first articles stored")
        os.kill(first, signal.SIGKILL)

        async def replaced() -> int | None:
            fresh = [pid for pid in await one_beat() if pid != first]
            return fresh[0] if fresh else None

        second = await eventually(replaced, 30, "a new worker's heartbeat")
        assert not alive(first) and alive(second)
        assert run.process.poll() is None  # the supervisor carries on
        restart = [line["msg"] for line in run.lines() if "restarting in" in line["msg"]]
        assert len(restart) == 1 and restart[0].startswith(f"worker (pid {first}) was killed by SIGKILL after")

        await eventually(holds(lambda: feeds.finished), 30, "publishers done")
        await eventually(
            holds(lambda: stored(client, SOURCES) == SOURCES * TOTAL),
            30,
            f"all {SOURCES * TOTAL} articles stored (have {stored(client, SOURCES)})",
        )
        created = Counter(created_entries(client))
        assert len(created) == SOURCES * TOTAL and set(created.values()) == {1}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            assert response.status == 200
    finally:
        children = run.children()
        code = run.stop()
        await feeds.stop()
        redis.stop()
    assert code == 0, run.log.read_text()[-3000:]
    assert children and not [pid for pid in children if alive(pid)]
