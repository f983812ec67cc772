"""The checks of ``tributary healthcheck web|worker`` (tributary/commands/healthcheck.py), each
a verdict and one line.

- ``web``: ``GET /healthz`` on the configured port answers 200 (liveness only: a web server
  is not restarted because Redis is away, see service/web/probes.py).
- ``worker``: a worker process on this host (the container's hostname) wrote a heartbeat in
  Redis lately (fresh: younger than twice its period, service/workers_status.py).
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from datetime import datetime

from redis.asyncio import Redis

from service.clock import utcnow
from service.config import Settings
from service.store.availability import REDIS_DOWN, describe
from service.store.embedded_redis import EmbeddedRedis
from service.store.heartbeats import Heartbeats
from service.workers_status import WorkerHeartbeat
from tributary.first_screen import local_url


def healthz_url(settings: Settings) -> str:
    return local_url(settings) + "healthz"


def check_web(settings: Settings, timeout: float) -> tuple[bool, str]:
    url = healthz_url(settings)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own http URL)
            return True, f"web: ok ({url} answered {response.status})"
    except urllib.error.HTTPError as exc:
        return False, f"web: {url} answered {exc.code}"
    except (OSError, TimeoutError) as exc:
        return False, f"web: {url} did not answer: {getattr(exc, 'reason', exc)}"


def judge_workers(beats: list[WorkerHeartbeat], host: str, now: datetime) -> tuple[bool, str]:
    """Healthy when a worker of ``host`` beat lately; the line names it, or the newest stale one."""
    mine = sorted((b for b in beats if b.host == host), key=lambda b: b.beat, reverse=True)
    fresh = [b for b in mine if b.fresh(now)]
    if fresh:
        b = fresh[0]
        return True, f"worker: ok (pid {b.pid} on {host} beat {b.age(now).total_seconds():.0f}s ago)"
    if mine:
        b = mine[0]
        return False, (
            f"worker: the last beat of {host} (pid {b.pid}) is {b.age(now).total_seconds():.0f}s old,"
            f" stale past {2 * b.period_seconds:g}s"
        )
    return False, f"worker: no heartbeat from {host} in Redis"


def check_worker(settings: Settings, host: str, timeout: float) -> tuple[bool, str]:
    url = settings.redis_url or EmbeddedRedis(settings.storage.data_dir).url

    async def read() -> list[WorkerHeartbeat]:
        redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return await Heartbeats(redis).all()
        finally:
            await redis.aclose()

    try:
        beats = asyncio.run(read())
    except REDIS_DOWN as exc:
        return False, f"worker: Redis did not answer: {describe(exc)}"
    return judge_workers(beats, host, utcnow())
