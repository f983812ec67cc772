"""arq worker settings: functions, cron jobs, and the per-process resources in ``ctx``."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from arq import Worker, cron
from arq.connections import ArqRedis
from arq.worker import func

from service import keys
from service.clock import Clock, utcnow
from service.config import Settings
from service.store.articles import Store
from service.store.connect import request_pool
from workers import tasks
from workers.fetch.client import new_session
from workers.ingest import drain as ingest
from workers.resources import Resources
from workers.runtime import ResilientWorker, job


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


def build_worker(
    settings: Settings, redis_url: str, *, clock: Clock = utcnow, burst: bool = False, **overrides: Any
) -> Worker:
    async def on_startup(ctx: dict[str, Any]) -> None:
        redis = ctx["redis"]
        store = Store(redis, settings)
        ctx["consumer"] = f"{socket.gethostname()}-{os.getpid()}-{id(ctx)}"
        ctx["queue_name"] = keys.ARQ_QUEUE
        if "resources" not in ctx:
            ctx["resources"] = Resources(settings, redis, store, new_session(settings.fetch), clock)
        await ingest.ensure_group(redis)
        await store.sources.sync_schedule([s.id for s in settings.sources], clock())
        await store.rebuild_feed_indexes()
        if burst:  # no cron in burst mode: dispatch what is due once, run it, exit
            await tasks.dispatch_due(ctx)
            await tasks.push_maintain(ctx)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "resources" in ctx:
            await ctx["resources"].session.close()

    options: dict[str, Any] = {
        "functions": [
            func(
                job(tasks.poll, on_outage="end", names_source=True),  # its claim lapses, and it is dispatched again
                name="poll",
                keep_result=60,
                timeout=settings.worker.lease_seconds,
                max_tries=3,
            ),
            func(
                job(tasks.websub_verify, on_outage="retry"),
                name="websub_verify",
                keep_result=60,
                timeout=60,
                max_tries=2,
            ),
            func(
                job(tasks.websub_notify, on_outage="retry"),
                name="websub_notify",
                keep_result=3600,
                timeout=120,
                max_tries=3,
            ),
            # keep_result=0: the id (one per source and coalescing window) is free once the job ran
            func(
                job(tasks.push_ingest, on_outage="retry"), name="push_ingest", keep_result=0, timeout=300, max_tries=3
            ),
            func(job(tasks.push_look, on_outage="end"), name="push_look", keep_result=0, timeout=120, max_tries=2),
            func(
                job(tasks.webhook_deliver, on_outage="retry"),
                name="webhook_deliver",
                keep_result=0,  # its job id is the webhook's: free it for the next delivery at once
                timeout=int(settings.api.webhook_timeout_seconds * 20) + 60,
                max_tries=settings.api.webhook_attempts + 1,  # the task gives up itself; +1 for a killed worker
            ),
            func(
                job(tasks.websub_deliver, on_outage="retry"),
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
    return ResilientWorker(**options)
