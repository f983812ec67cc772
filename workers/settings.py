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

from service import keys
from service.clock import Clock, utcnow
from service.config import Settings
from service.store.articles import Store
from service.store.availability import REDIS_DOWN
from service.store.connect import request_pool
from service.store.dead_letters import DeadLetters
from service.store.source_registry import LiveSettings
from workers import tasks
from workers.fetch.client import new_session
from workers.ingest import drain as ingest
from workers.ingest.behind import DrainBehind
from workers.resources import Resources
from workers.runtime import ResilientWorker, job

log = logging.getLogger(__name__)


def job_serializer(obj: Any) -> bytes:
    """Jobs carry ids and JSON results; JSON on the wire, never pickle."""
    return json.dumps(obj, default=str).encode()


def job_deserializer(raw: bytes) -> Any:
    return json.loads(raw)


def arq_redis(redis_url: str, timeout: float = 10.0) -> ArqRedis:
    """The worker's one client: arq's queue and every job's calls, each bounded by ``timeout``."""
    return ArqRedis(
        connection_pool=request_pool(redis_url, timeout),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
        default_queue_name=keys.ARQ_QUEUE,
    )


HOUSEKEEPING_SECONDS = 1.0
"""How often a worker process flushes its counters and checks for changed sources."""


class TributaryWorker(ResilientWorker):
    """The resilient worker (:mod:`workers.runtime`), keeping a dead letter of every job that
    exhausted its tries."""

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
        except REDIS_DOWN as exc:  # the job is failed either way; the outage is logged once
            self.outage.failed(exc)
        except Exception:  # the job is failed either way; say so rather than lose the failure
            log.exception("could not keep a dead letter for job %s", job_id)


def recorded(name: str, function: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    """Count the job's outcome; a job that raises (not a Retry, not Redis going away: see
    :func:`workers.runtime.job`) is kept as a dead letter."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        res: Resources = ctx["resources"]
        try:
            result = await function(ctx, *args)
        except Retry:
            res.counters.inc("jobs_total", function=name, status="retried")
            raise
        except REDIS_DOWN:
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
        except REDIS_DOWN:
            continue  # Redis away: the worker's loop says so once; try again next round
        except Exception:
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
        ctx["consumer"] = f"{socket.gethostname()}-{os.getpid()}-{id(ctx)}"
        ctx["queue_name"] = keys.ARQ_QUEUE
        if "resources" not in ctx:
            live = LiveSettings(settings, redis)
            await live.refresh(force=True)
            store = Store(redis, live.current)
            ctx["live"] = live
            ctx["resources"] = res = Resources(live.current, redis, store, new_session(settings.fetch), clock)
            live.listeners.append(functools.partial(_use_settings, res))
        res = ctx["resources"]
        live = ctx["live"]
        behind = ctx["drain_behind"] = DrainBehind(functools.partial(tasks.ingest_queued, res, ctx["consumer"]))
        res.on_queued = behind.queued
        await ingest.ensure_group(redis)
        await apply_sources(res)
        if burst:  # no cron in burst mode: dispatch what is due once, run it, exit
            await tasks.dispatch_due(ctx)
            await tasks.push_maintain(ctx)
            return
        ctx["housekeeping"] = asyncio.create_task(housekeeping(ctx))
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(live.registry.announce())
            )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "drain_behind" in ctx:
            await ctx["drain_behind"].close()
        if "housekeeping" in ctx:
            ctx["housekeeping"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ctx["housekeeping"]
        if "resources" in ctx:
            with contextlib.suppress(Exception):
                await ctx["resources"].counters.flush(ctx["resources"].redis)
            await ctx["resources"].session.close()
            ctx["resources"].close()

    options: dict[str, Any] = {
        "functions": [
            func(
                job(
                    recorded("poll", tasks.poll), on_outage="end", names_source=True
                ),  # its claim lapses, and it is dispatched again
                name="poll",
                keep_result=60,
                timeout=settings.worker.lease_seconds,
                max_tries=3,
            ),
            func(
                job(recorded("poll_batch", tasks.poll_batch), on_outage="end"),  # the claims lapse, as for poll
                name="poll_batch",
                keep_result=60,
                # its sources may wait for the process's places (workers/fetch/in_flight.py) first
                timeout=2 * settings.worker.lease_seconds,
                max_tries=3,
            ),
            func(
                job(recorded("websub_verify", tasks.websub_verify), on_outage="retry"),
                name="websub_verify",
                keep_result=60,
                timeout=60,
                max_tries=2,
            ),
            func(
                job(recorded("websub_notify", tasks.websub_notify), on_outage="retry"),
                name="websub_notify",
                keep_result=3600,
                timeout=120,
                max_tries=3,
            ),
            # keep_result=0: the id (one per source and coalescing window) is free once the job ran
            func(
                job(recorded("push_ingest", tasks.push_ingest), on_outage="retry"),
                name="push_ingest",
                keep_result=0,
                timeout=300,
                max_tries=3,
            ),
            func(
                job(recorded("push_look", tasks.push_look), on_outage="end"),
                name="push_look",
                keep_result=0,
                timeout=120,
                max_tries=2,
            ),
            func(
                job(recorded("add_source", tasks.add_source), on_outage="end"),
                name="add_source",
                keep_result=3600,
                timeout=120,
                max_tries=1,
            ),
            func(
                job(recorded("webhook_deliver", tasks.webhook_deliver), on_outage="retry"),
                name="webhook_deliver",
                keep_result=0,  # its job id is the webhook's: free it for the next delivery at once
                timeout=int(settings.api.webhook_timeout_seconds * 20) + 60,
                max_tries=settings.api.webhook_attempts + 1,  # the task gives up itself; +1 for a killed worker
            ),
            func(
                job(recorded("websub_deliver", tasks.websub_deliver), on_outage="retry"),
                name="websub_deliver",
                keep_result=3600,
                timeout=120,
                max_tries=settings.websub.delivery_attempts + 1,  # the task gives up itself; +1 for a killed worker
            ),
        ],
        "cron_jobs": []
        if burst
        else [
            cron(
                job(tasks.dispatch_due, on_outage="end"),
                name="dispatch_due",
                second=None,
                keep_result=0,
                timeout=30,
                run_at_startup=True,
            ),
            cron(
                job(tasks.drain_ingest, on_outage="end"),
                name="drain_ingest",
                second={0, 15, 30, 45},
                keep_result=0,
                timeout=120,
            ),
            cron(
                job(tasks.webhooks_dispatch, on_outage="end"),
                name="webhooks_dispatch",
                second=set(range(0, 60, 5)),
                keep_result=0,
                timeout=30,
            ),
            cron(
                job(tasks.push_maintain, on_outage="end"),
                name="push_maintain",
                second=set(range(0, 60, 5)),
                keep_result=0,
                timeout=30,
            ),
            cron(
                job(tasks.changelog_trim, on_outage="end"),
                name="changelog_trim",
                minute={7, 37},
                second=0,
                keep_result=0,
                timeout=120,
            ),
        ],
        "redis_pool": arq_redis(redis_url, settings.worker.redis_timeout_seconds),
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
        "heartbeat_seconds": settings.worker.heartbeat_seconds,
    }
    options.update(overrides)
    return TributaryWorker(**options)


def _use_settings(res: Resources, settings: Settings) -> None:
    res.settings = settings
    res.store.settings = settings
