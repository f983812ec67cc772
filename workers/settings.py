"""arq worker settings: functions, cron jobs, and the per-process resources in ``ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry, Worker, cron
from arq.connections import ArqRedis
from arq.typing import WorkerCoroutine
from arq.worker import func
from redis.asyncio import ConnectionPool

from service import keys
from service.clock import Clock, utcnow
from service.config import Settings
from service.store.articles import Store
from service.store.dead_letters import DeadLetters
from service.store.source_registry import LiveSettings
from workers import tasks
from workers.fetch.client import new_session
from workers.ingest import drain as ingest
from workers.resources import Resources

log = logging.getLogger(__name__)


def job_serializer(obj: Any) -> bytes:
    """Jobs carry ids and JSON results; JSON on the wire, never pickle."""
    return json.dumps(obj, default=str).encode()


def job_deserializer(raw: bytes) -> Any:
    return json.loads(raw)


def arq_redis(redis_url: str) -> ArqRedis:
    return ArqRedis(
        connection_pool=ConnectionPool.from_url(redis_url),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=keys.ARQ_QUEUE,
    )


HOUSEKEEPING_SECONDS = 1.0
"""How often a worker process flushes its counters and checks for changed sources."""


class TributaryWorker(Worker):
    """arq's worker, keeping a dead letter of every job that exhausted its tries."""

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        await super().finish_failed_job(job_id, result_data)
        try:
            result = json.loads(result_data) if result_data else {}
            await DeadLetters(self.pool).add_job(
                str(result.get("f", "?")),
                list(result.get("a", [])),
                str(result.get("r", "")),
                int(result.get("t", 0)),
                utcnow(),
            )
        except Exception:  # the job is failed either way; say so rather than lose the failure
            log.exception("could not keep a dead letter for job %s", job_id)


def recorded(name: str, function: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    """Count the job's outcome; a job that raises (not a Retry) is kept as a dead letter."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        res: Resources = ctx["resources"]
        try:
            result = await function(ctx, *args)
        except Retry:
            res.counters.inc("jobs_total", function=name, status="retried")
            raise
        except Exception as exc:
            res.counters.inc("jobs_total", function=name, status="failed")
            error = f"{type(exc).__name__}: {exc}"
            await DeadLetters(res.redis).add_job(name, list(args), error, ctx.get("job_try", 1), res.clock())
            raise
        res.counters.inc("jobs_total", function=name, status="complete")
        return result

    return run


async def housekeeping(ctx: dict[str, Any]) -> None:
    """Per process, about once a second: flush the counters, follow changes of the sources."""
    res: Resources = ctx["resources"]
    live: LiveSettings = ctx["live"]
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            await res.counters.flush(res.redis)
            if await live.refresh():
                await apply_sources(res)
        except Exception:  # Redis away for a moment: try again next round
            log.warning("worker housekeeping failed; retrying", exc_info=True)


async def apply_sources(res: Resources) -> None:
    """New sources are due now, removed ones leave the schedule, feed indexes follow membership."""
    await res.store.sources.sync_schedule([s.id for s in res.settings.sources], res.clock())
    await res.store.rebuild_feed_indexes()


def build_worker(
    settings: Settings, redis_url: str, *, clock: Clock = utcnow, burst: bool = False, **overrides: Any
) -> Worker:
    async def on_startup(ctx: dict[str, Any]) -> None:
        redis = ctx["redis"]
        live = LiveSettings(settings, redis)
        await live.refresh(force=True)
        store = Store(redis, live.current)
        ctx["consumer"] = f"{socket.gethostname()}-{os.getpid()}-{id(ctx)}"
        ctx["queue_name"] = keys.ARQ_QUEUE
        ctx["live"] = live
        ctx["resources"] = res = Resources(live.current, redis, store, new_session(settings.fetch), clock)
        live.listeners.append(functools.partial(_use_settings, res))
        await ingest.ensure_group(redis)
        await apply_sources(res)
        if burst:  # no cron in burst mode: dispatch what is due once, run it, exit
            await tasks.dispatch_due(ctx)
            return
        ctx["housekeeping"] = asyncio.create_task(housekeeping(ctx))
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(live.registry.announce())
            )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "housekeeping" in ctx:
            ctx["housekeeping"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ctx["housekeeping"]
        if "resources" in ctx:
            with contextlib.suppress(Exception):
                await ctx["resources"].counters.flush(ctx["resources"].redis)
            await ctx["resources"].session.close()

    options: dict[str, Any] = {
        "functions": [
            func(
                recorded("poll", tasks.poll),
                name="poll",
                keep_result=60,
                timeout=settings.worker.lease_seconds,
                max_tries=3,
            ),
            func(
                recorded("websub_verify", tasks.websub_verify),
                name="websub_verify",
                keep_result=60,
                timeout=60,
                max_tries=2,
            ),
            func(
                recorded("websub_notify", tasks.websub_notify),
                name="websub_notify",
                keep_result=3600,
                timeout=120,
                max_tries=3,
            ),
            func(
                recorded("add_source", tasks.add_source), name="add_source", keep_result=3600, timeout=120, max_tries=1
            ),
            func(
                recorded("webhook_deliver", tasks.webhook_deliver),
                name="webhook_deliver",
                keep_result=0,  # its job id is the webhook's: free it for the next delivery at once
                timeout=int(settings.api.webhook_timeout_seconds * 20) + 60,
                max_tries=settings.api.webhook_attempts + 1,  # the task gives up itself; +1 for a killed worker
            ),
            func(
                recorded("websub_deliver", tasks.websub_deliver),
                name="websub_deliver",
                keep_result=3600,
                timeout=120,
                max_tries=settings.websub.delivery_attempts + 1,  # the task gives up itself; +1 for a killed worker
            ),
        ],
        "cron_jobs": []
        if burst
        else [
            cron(tasks.dispatch_due, name="dispatch_due", second=None, keep_result=0, timeout=30, run_at_startup=True),
            cron(tasks.drain_ingest, name="drain_ingest", second={0, 15, 30, 45}, keep_result=0, timeout=120),
            cron(
                tasks.webhooks_dispatch,
                name="webhooks_dispatch",
                second=set(range(0, 60, 5)),
                keep_result=0,
                timeout=30,
            ),
            cron(tasks.changelog_trim, name="changelog_trim", minute={7, 37}, second=0, keep_result=0, timeout=120),
        ],
        "redis_pool": arq_redis(redis_url),
        "queue_name": keys.ARQ_QUEUE,
        "max_jobs": settings.worker.max_jobs,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "burst": burst,
        "handle_signals": not burst,
        "health_check_interval": 30,
        "health_check_key": keys.ARQ_HEALTH,
    }
    options.update(overrides)
    return TributaryWorker(**options)


def _use_settings(res: Resources, settings: Settings) -> None:
    res.settings = settings
    res.store.settings = settings
