"""A worker process that outlives Redis outages and says it is alive.

arq's loop ends at the first Redis error it meets (reading the queue, starting a job, the cron
enqueue, the health key), and with it the process. :class:`ResilientWorker` keeps the loop:
an iteration that finds Redis away is logged once per outage and retried with a growing,
jittered wait; when Redis answers again the worker first stores what it had read from the
ingest stream but not acknowledged, then carries on. Jobs are wrapped by :func:`job` so that
a Redis error inside one ends it quietly (the outage is already logged): a poll is picked up
again when its claim lapses, a delivery is retried later, a cron run is simply the next one.

Nothing is half-done by an outage: a poll saves its validators only after its articles are in
the ingest stream (workers/poll/pipeline.py), so a poll whose end failed is fetched in full
again; ingest acknowledges an entry only after storing it, and storing is idempotent.

Every ``heartbeat_seconds`` the loop writes this process's :class:`WorkerHeartbeat`;
``/readyz`` counts fresh ones and the operators' status lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import metadata
from typing import Any, Literal, cast

from arq import Retry, Worker
from arq.typing import WorkerCoroutine

from service.backoff import backoff_seconds
from service.clock import utcnow
from service.logs import bind_job, bind_source
from service.store.availability import REDIS_DOWN, Outage, describe
from service.store.heartbeats import Heartbeats
from service.workers_status import MAX_LISTED_JOBS, WorkerHeartbeat
from workers import tasks

log = logging.getLogger("tributary.worker")

OUTAGE_KEY = "redis_outage"  # ctx key of the process's Outage, shared by the loop and its jobs
LOOP_BACKOFF_BASE = 0.5
LOOP_BACKOFF_CAP = 2.0
JOB_RETRY_BASE = 5.0
JOB_RETRY_CAP = 60.0

JobFunction = Callable[..., Awaitable[Any]]


def _version() -> str:
    try:
        return metadata.version("tributary")
    except metadata.PackageNotFoundError:
        return ""


class ResilientWorker(Worker):
    def __init__(self, *args: Any, heartbeat_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat_seconds = heartbeat_seconds
        self.outage = Outage(log, "workers wait and retry")
        self.ctx[OUTAGE_KEY] = self.outage
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started: datetime = utcnow()
        self.worker_id = f"{self.host}-{self.pid}-{int(self.started.timestamp())}"
        self._failures = 0
        self._next_beat = 0.0
        self._finishing: asyncio.Task[None] | None = None

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            self._failures += 1
            self.outage.failed(exc)
            await asyncio.sleep(backoff_seconds(self._failures, base=LOOP_BACKOFF_BASE, cap=LOOP_BACKOFF_CAP))
            return
        if self._failures:
            self._failures = 0
            self.outage.succeeded()
            self._finish_reads()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one job at a time, giving back the slot arq takes before a Redis call that fails
        (it never would, and a few outages would leave the worker unable to take any job)."""
        for raw_id in job_ids:
            job_id = raw_id.decode()
            before = self.tasks.get(job_id)
            try:
                await super().start_jobs([raw_id])
            except REDIS_DOWN:
                if self.tasks.get(job_id) is before:
                    self.job_counter -= 1
                    self.sem.release()
                raise
            if self.job_counter >= self.max_jobs:
                return

    async def heart_beat(self) -> None:
        now = time.monotonic()
        if now >= self._next_beat:
            await Heartbeats(self.pool).beat(self.heartbeat())
            self._next_beat = now + self.heartbeat_seconds
        await super().heart_beat()

    def heartbeat(self) -> WorkerHeartbeat:
        running = sorted(self.job_tasks)
        return WorkerHeartbeat(
            id=self.worker_id,
            host=self.host,
            pid=self.pid,
            started=self.started,
            beat=utcnow(),
            period_seconds=self.heartbeat_seconds,
            jobs=running[:MAX_LISTED_JOBS],
            jobs_running=len(running),
            jobs_done=self.jobs_complete,
            jobs_failed=self.jobs_failed,
            version=_version(),
        )

    def _finish_reads(self) -> None:
        """After an outage: store what this worker read from the ingest stream and never acknowledged."""
        resources = self.ctx.get("resources")
        if resources is None or (self._finishing is not None and not self._finishing.done()):
            return

        async def finish() -> None:
            try:
                await tasks.ingest_queued(resources, self.ctx["consumer"], own_pending=True)
            except REDIS_DOWN as exc:
                self.outage.failed(exc)  # the loop finds out too, and calls this again once it is back

        self._finishing = asyncio.create_task(finish(), name="finish-reads")

    async def close(self) -> None:
        if self._finishing is not None:
            self._finishing.cancel()
        if self._pool is not None:
            with contextlib.suppress(*REDIS_DOWN):
                await Heartbeats(self.pool).forget(self.worker_id)
        # arq's close() gathers the job tasks its signal handler just cancelled, and a plain
        # gather re-raises their CancelledError: wait for them here, cancelled or not, first.
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        try:
            await super().close()
        except REDIS_DOWN as exc:
            log.warning("stopped without reaching redis (%s)", describe(exc))


def job(fn: JobFunction, *, on_outage: Literal["end", "retry"], names_source: bool = False) -> WorkerCoroutine:
    """``fn`` as an arq job: its lines carry the job id (and the source id, ``names_source``: the
    first argument), and a Redis error ends it with no traceback: "end" returns None, "retry"
    asks arq to run it again later (deliveries, which nothing else would redo)."""

    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        bind_job(ctx.get("job_id"))
        if names_source and args:
            bind_source(str(args[0]))
        try:
            return await fn(ctx, *args, **kwargs)
        except REDIS_DOWN as exc:
            ctx[OUTAGE_KEY].failed(exc)
            if on_outage == "retry":
                delay = backoff_seconds(ctx.get("job_try", 1), base=JOB_RETRY_BASE, cap=JOB_RETRY_CAP)
                raise Retry(defer=delay) from None
            return None

    return cast(WorkerCoroutine, run)
