"""Enqueue arq jobs by name from anywhere (the web side included) without importing ``workers``.

The wire format matches ``workers.settings``: JSON job payloads on queue ``keys.ARQ_QUEUE``.
The queue shares the given client's connection pool, so no extra connections are opened.
"""

from __future__ import annotations

import json
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis

from service import keys


def _serialize(obj: Any) -> bytes:
    return json.dumps(obj, default=str).encode()


def job_queue(redis: Redis) -> ArqRedis:
    if isinstance(redis, ArqRedis):
        return redis
    return ArqRedis(
        connection_pool=redis.connection_pool,
        job_serializer=_serialize,
        job_deserializer=json.loads,
        default_queue_name=keys.ARQ_QUEUE,
    )


async def enqueue(
    redis: Redis, function: str, *args: Any, job_id: str | None = None, defer_seconds: float | None = None
) -> bool:
    """Queue ``function(*args)``; False when a job with ``job_id`` is already queued or done."""
    job = await job_queue(redis).enqueue_job(
        function, *args, _job_id=job_id, _queue_name=keys.ARQ_QUEUE, _defer_by=defer_seconds
    )
    return job is not None


async def job_outcome(redis: Redis, job_id: str) -> tuple[str, str | None]:
    """(status, what it returned or why it failed) of a job: deferred, queued, in_progress,
    complete or not_found."""
    job = Job(job_id, job_queue(redis), _queue_name=keys.ARQ_QUEUE, _deserializer=json.loads)
    status = await job.status()
    if status is not JobStatus.complete:
        return status.value, None
    info = await job.result_info()
    if info is None:
        return status.value, None
    return status.value, str(info.result) if info.success else f"failed: {info.result}"
