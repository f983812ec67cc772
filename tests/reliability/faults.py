"""What the fault tests share: a redis-server of their own that they can kill, restart and
freeze; feeds that keep publishing while the faults happen; a real ``tributary run``; and
deadline-bound waiting (a condition polled until it holds, never a fixed sleep)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

import redis as redis_sync
from aiohttp import web

from service import keys
from service.store.embedded_redis import redis_server_binary
from tests.feedserver import LocalServer

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: str, every: float = 0.2) -> T:
    """``check()``'s first truthy answer; fails naming ``what`` if none comes ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(every)


def holds(check: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """A plain condition as :func:`eventually` takes it."""

    async def run() -> object:
        return check()

    return run


class RedisServer:
    """A redis-server on a free loopback port with AOF fsynced at every write, so a SIGKILL
    loses nothing: what a test checks after a restart is what the workers did, not what
    ``appendfsync everysec`` dropped."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        args = [
            str(redis_server_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.answering():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(self.dir / 'redis.log').read_text()[-500:]}")
            time.sleep(0.05)

    def answering(self) -> bool:
        client = redis_sync.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis_sync.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def client(self) -> redis_sync.Redis:
        return redis_sync.Redis(port=self.port, socket_timeout=5)


class GrowingFeeds(LocalServer):
    """Sources ``/s0`` .. that publish one more item every ``step`` seconds up to ``total``,
    each showing only its newest ``window`` items, like a publisher's feed: an item nobody
    fetches while it is in the window is gone for good."""

    def __init__(self, sources: int, total: int, window: int, step: float) -> None:
        super().__init__()
        self.sources, self.total, self.window, self.step = sources, total, window, step
        self.published = 1
        self.base = datetime.now(UTC) - timedelta(days=1)
        self._task: asyncio.Task[None] | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/s{n:[0-9]+}", self.feed)

    def begin(self) -> None:
        self._task = asyncio.create_task(self._publish())

    async def _publish(self) -> None:
        while self.published < self.total:
            await asyncio.sleep(self.step)
            self.published += 1

    @property
    def finished(self) -> bool:
        return self.published >= self.total

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await super().stop()

    async def feed(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        shown = range(max(0, self.published - self.window), self.published)
        items = "".join(
            f"<item><title>Source {n} story {i}</title><link>http://127.0.0.1:{self.port}/s{n}/{i}</link>"
            f"<guid>s{n}-{i}</guid><pubDate>{format_datetime(self.base + timedelta(minutes=i), usegmt=True)}"
            f"</pubDate><description>Story {i} of source {n}.</description></item>"
            for i in reversed(shown)
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>s{n}</title><link>http://127.0.0.1/</link>{items}</channel></rss>'
        etag = f'"{self.published}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body.encode(), content_type="application/rss+xml", headers={"ETag": etag})


def write_config(path: Path, port: int, feeds_port: int, sources: int, *, processes: int = 1) -> Path:
    blocks = "".join(
        f'[[sources]]\nid = "s{n}"\nurl = "http://127.0.0.1:{feeds_port}/s{n}"\ninterval_seconds = 1\n'
        'adaptive = false\ntags = ["all"]\n'
        for n in range(sources)
    )
    path.write_text(
        f'[server]\nport = {port}\nbase_url = "http://127.0.0.1:{port}"\nredis_timeout_seconds = 1\n'
        "[fetch]\nallow_private_networks = true\njitter_fraction = 0\ntimeout_seconds = 5\n"
        "host_concurrency = 50\nhost_requests_per_minute = 100000\n"
        f"[worker]\nlease_seconds = 5\nheartbeat_seconds = 1\nredis_timeout_seconds = 2\nprocesses = {processes}\n"
        '[storage]\ndata_dir = "data"\n'
        + blocks
        + '[[feeds]]\nname = "all"\ntitle = "All"\ntags = ["all"]\nlimit = 1000\n'
    )
    return path


class Run:
    """A real ``tributary run`` (JSON logs to a file), stopped with SIGINT at the end."""

    def __init__(self, config: Path, redis_url: str, log: Path) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
        env["REDIS_URL"] = redis_url
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tributary", "--log-format", "json", "run", "--config", str(config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for raw in self.log.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(raw))
            except ValueError:
                found.append({"msg": raw, "raw": True})
        return found

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def children(self) -> list[int]:
        """The pids whose parent is this run (Linux /proc)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def worker_beats(client: redis_sync.Redis) -> list[dict[str, Any]]:
    ids = [i.decode() for i in client.zrange(keys.WORKERS, 0, -1)]
    beats = [client.get(keys.worker(i)) for i in ids]
    return [json.loads(b) for b in beats if b]


def stored(client: redis_sync.Redis, sources: int) -> int:
    return sum(int(client.zcard(keys.source_index(f"s{n}"))) for n in range(sources))


def created_entries(client: redis_sync.Redis) -> list[str]:
    """The article id of every ``created`` entry of the change log, in commit order."""
    return [
        fields[b"id"].decode()
        for _, fields in client.xrange(keys.CHANGELOG, "-", "+")
        if fields.get(b"kind") == b"created"
    ]


def article_keys(client: redis_sync.Redis) -> int:
    return sum(1 for key in client.scan_iter(match=keys.article("*"), count=1000) if not key.endswith(b":revisions"))
