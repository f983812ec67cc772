"""Real `tributary worker` processes on one Redis: a due source is polled once per due time and
never concurrently, and a worker SIGKILLed mid-poll does not strand its source."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import DATA

pytestmark = pytest.mark.slow

RSS = (DATA / "e2e" / "news.rss").read_bytes()
SOURCES = 12
INTERVAL = 2
LEASE = 5


@dataclass
class Hit:
    path: str
    start: float
    end: float | None = None


class LoggingServer:
    """Answers every source after a short delay; the first request for /hang never answers."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.hang_started = asyncio.Event()
        self.stop = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        hit = Hit(request.path, time.monotonic())
        self.hits.append(hit)
        try:
            if request.path == "/hang" and not self.hang_started.is_set():
                self.hang_started.set()
                await self.stop.wait()  # its client is SIGKILLed meanwhile
                return web.Response(status=500)
            await asyncio.sleep(0.15)  # long enough for overlapping polls to show
            if request.headers.get("If-None-Match") == '"v1"':
                return web.Response(status=304, headers={"ETag": '"v1"'})
            return web.Response(body=RSS, content_type="application/rss+xml", headers={"ETag": '"v1"'})
        finally:
            hit.end = hit.end or time.monotonic()


def write_config(tmp_path: Path, port: int) -> Path:
    sources = "".join(
        f'[[sources]]\nid = "s{n}"\nurl = "http://127.0.0.1:{port}/s{n}"\ninterval_seconds = {INTERVAL}\nadaptive = false\n'
        for n in range(SOURCES)
    )
    sources += f'[[sources]]\nid = "hang"\nurl = "http://127.0.0.1:{port}/hang"\ninterval_seconds = {INTERVAL}\nadaptive = false\n'
    config = tmp_path / "tributary.toml"
    config.write_text(
        "[fetch]\nallow_private_networks = true\njitter_fraction = 0\ntimeout_seconds = 30\n"
        "host_concurrency = 50\nhost_requests_per_minute = 100000\n"
        f"[worker]\nlease_seconds = {LEASE}\nmax_jobs = 20\n" + sources
    )
    return config


def start_worker(config: Path, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env["REDIS_URL"] = redis_url
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tributary", "--config", str(config), "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_three_workers_poll_each_due_source_once_and_survive_a_kill(redis, redis_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = LoggingServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = write_config(tmp_path, port)
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # One worker takes everything first; it is killed while its poll of /hang hangs.
        doomed = start_worker(config, redis_url, log)
        workers.append(doomed)
        await asyncio.wait_for(server.hang_started.wait(), 30)
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        server.hits[[h.path for h in server.hits].index("/hang")].end = killed_at  # its connection died here
        workers.extend(start_worker(config, redis_url, log) for _ in range(3))
        deadline = killed_at + 20
        while time.monotonic() < deadline:
            hang_hits = [h for h in server.hits if h.path == "/hang"]
            polled = defaultdict(int)
            for hit in server.hits:
                if hit.start > killed_at:
                    polled[hit.path] += 1
            if len(hang_hits) >= 2 and len(polled) == SOURCES + 1 and min(polled.values()) >= 3:
                break
            await asyncio.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
        server.stop.set()
        await runner.cleanup()
    output = log.read_text(errors="replace")

    # The source whose poller died was taken over once its lease ran out.
    hang_hits = [h for h in server.hits if h.path == "/hang"]
    assert len(hang_hits) >= 2, output[-3000:]
    assert hang_hits[1].start >= hang_hits[0].start + LEASE - 1.5

    # No source was polled twice for one due time, nor by two workers at once.
    by_path: dict[str, list[Hit]] = defaultdict(list)
    for hit in server.hits:
        by_path[hit.path].append(hit)
    assert set(by_path) == {f"/s{n}" for n in range(SOURCES)} | {"/hang"}
    for path, hits in by_path.items():
        hits.sort(key=lambda h: h.start)
        assert len(hits) >= 3, (path, output[-3000:])
        for earlier, later in itertools.pairwise(hits):
            assert earlier.end is not None and later.start >= earlier.end, f"{path} polled concurrently"
            assert later.start - earlier.start >= INTERVAL - 0.5, f"{path} polled twice for one due time"
    assert "Traceback" not in output, output[-3000:]
