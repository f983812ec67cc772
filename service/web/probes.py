"""``/healthz`` (liveness: the process answers, nothing else is asked) and ``/readyz``
(readiness: Redis answers, a worker beat lately, ingest is not stuck; see service/readiness.py).

An orchestrator restarts a process whose liveness fails and stops sending traffic to one that
is not ready, so liveness must never depend on Redis: restarting the web server does not bring
Redis back.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from service.readiness import decide_readiness
from service.store.availability import REDIS_DOWN, describe
from service.store.heartbeats import Heartbeats
from service.store.ingest_backlog import ingest_backlog
from service.web.appkeys import CLOCK, OUTAGE, REDIS, SETTINGS
from service.web.bound_routes import BoundRoutes
from service.web.feed_views import json_response

NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"}, headers=NO_STORE)


async def readyz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    outage = request.app[OUTAGE]
    bound = settings.worker.ingest_stuck_seconds
    now = request.app[CLOCK]()
    if not outage.may_try():  # a stalled Redis was just found away: say so without waiting again
        verdict = decide_readiness(now, redis_error=outage.reason, ingest_max_age_seconds=bound)
    else:
        redis = request.app[REDIS]
        try:
            async with asyncio.timeout(settings.server.redis_timeout_seconds):
                started = time.perf_counter()
                await redis.ping()
                latency_ms = round((time.perf_counter() - started) * 1000, 2)
                beats = await Heartbeats(redis).all()
                backlog = await ingest_backlog(redis)
        except REDIS_DOWN as exc:
            outage.failed(exc)
            verdict = decide_readiness(now, redis_error=describe(exc), ingest_max_age_seconds=bound)
        else:
            outage.succeeded()
            verdict = decide_readiness(
                now,
                redis_error=None,
                latency_ms=latency_ms,
                beats=beats,
                queued=backlog.queued,
                oldest_queued=backlog.oldest,
                ingest_max_age_seconds=bound,
            )
    status = 200 if verdict.status == "ready" else 503
    return json_response(verdict.model_dump(mode="json"), status=status, headers=NO_STORE)


def add_routes(routes: BoundRoutes) -> None:
    routes.add_get("/healthz", healthz)
    routes.add_get("/readyz", readyz)
