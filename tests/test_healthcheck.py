"""`tributary healthcheck web|worker`, the containers' healthchecks: the real command against a
real web app and real heartbeats in Redis; exit 0 or 1 with one line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from service.clock import utcnow
from service.config import settings_from_dict
from service.store.heartbeats import Heartbeats
from service.web.app import create_app
from service.workers_status import WorkerHeartbeat
from tributary.health import healthz_url, judge_workers

NOW = datetime.fromisoformat("2026-11-25T12:00:00+00:00")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "tributary.toml"
    path.write_text(f'[server]\nport = {port}\nbase_url = "http://127.0.0.1:{port}"\n')
    return path


async def healthcheck(config: Path, redis_url: str, *args: str) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env["REDIS_URL"] = redis_url
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tributary", "--config", str(config), "healthcheck", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode().splitlines()


def beat(host: str, at: datetime, pid: int = 1, period: float = 5) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        id=f"{host}-{pid}-1", host=host, pid=pid, started=at - timedelta(hours=1), beat=at, period_seconds=period
    )


async def test_web_is_healthy_while_its_server_answers(tmp_path: Path, redis_url: str, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    config = write_config(tmp_path, port)
    server = await aiohttp_server(create_app(settings_from_dict({}), redis_url=redis_url), port=port)
    code, lines = await healthcheck(config, redis_url, "web")
    assert code == 0 and len(lines) == 1 and lines[0].startswith("web: ok"), lines
    await server.close()
    code, lines = await healthcheck(config, redis_url, "web", "--timeout", "1")
    assert code == 1 and len(lines) == 1 and "did not answer" in lines[0], lines


async def test_worker_is_healthy_while_this_host_beats(tmp_path: Path, redis_url: str, redis: Redis) -> None:
    config = write_config(tmp_path, free_port())
    code, lines = await healthcheck(config, redis_url, "worker")
    assert code == 1 and lines == [f"worker: no heartbeat from {socket.gethostname()} in Redis"]

    await Heartbeats(redis).beat(beat(socket.gethostname(), utcnow()))
    code, lines = await healthcheck(config, redis_url, "worker")
    assert code == 0 and len(lines) == 1 and lines[0].startswith("worker: ok (pid 1 on"), lines

    # Another container's worker does not make this one healthy.
    code, lines = await healthcheck(config, redis_url, "worker", "--host", "other-box")
    assert code == 1 and lines == ["worker: no heartbeat from other-box in Redis"]

    await Heartbeats(redis).beat(beat("other-box", utcnow() - timedelta(seconds=60)))
    code, lines = await healthcheck(config, redis_url, "worker", "--host", "other-box")
    assert code == 1 and len(lines) == 1 and "stale past 10s" in lines[0], lines


async def test_worker_is_unhealthy_without_redis(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    code, lines = await healthcheck(config, f"redis://127.0.0.1:{free_port()}/0", "worker", "--timeout", "1")
    assert code == 1 and len(lines) == 1 and lines[0].startswith("worker: Redis did not answer"), lines


@pytest.mark.parametrize(
    ("beats", "healthy"),
    [
        ([beat("box", NOW - timedelta(seconds=10))], True),  # two periods old: still fresh
        ([beat("box", NOW - timedelta(seconds=11))], False),
        ([beat("box", NOW - timedelta(seconds=60)), beat("box", NOW, pid=2)], True),  # a restarted worker
        ([beat("elsewhere", NOW)], False),
        ([], False),
    ],
)
def test_judge_workers(beats: list[WorkerHeartbeat], healthy: bool) -> None:
    assert judge_workers(beats, "box", NOW)[0] is healthy


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8080/healthz"),
        ("::", "http://[::1]:8080/healthz"),
        ("10.0.0.5", "http://10.0.0.5:8080/healthz"),
    ],
)
def test_healthz_url_asks_loopback_for_a_wildcard_bind(host: str, url: str) -> None:
    assert healthz_url(settings_from_dict({"server": {"host": host}})) == url
