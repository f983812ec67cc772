"""``/readyz``: whether this deployment can do its job now. Pure: what the probe read goes in,
a verdict with one entry per check comes out (JSON, 503 when any check fails).

Ready means: Redis answers; at least one worker beat within twice its period (someone polls and
ingests); and nothing has waited in the ingest queue longer than ``[worker] ingest_stuck_seconds``
(the workers that beat are not stuck).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from service.workers_status import FRESH_PERIODS, WorkerHeartbeat


class RedisCheck(BaseModel):
    ok: bool
    detail: str
    latency_ms: float | None = None


class WorkersCheck(BaseModel):
    ok: bool
    detail: str
    fresh: int = 0
    known: int = 0
    newest_beat_age_seconds: float | None = None


class IngestCheck(BaseModel):
    ok: bool
    detail: str
    queued: int | None = None
    oldest_age_seconds: float | None = None
    max_age_seconds: int


class Checks(BaseModel):
    redis: RedisCheck
    workers: WorkersCheck
    ingest: IngestCheck


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: Checks


def decide_readiness(
    now: datetime,
    *,
    redis_error: str | None,
    latency_ms: float | None = None,
    beats: Sequence[WorkerHeartbeat] = (),
    queued: int | None = None,
    oldest_queued: datetime | None = None,
    ingest_max_age_seconds: int,
) -> Readiness:
    if redis_error is not None:
        unknown = f"unknown: Redis unavailable ({redis_error})"
        checks = Checks(
            redis=RedisCheck(ok=False, detail=redis_error),
            workers=WorkersCheck(ok=False, detail=unknown),
            ingest=IngestCheck(ok=False, detail=unknown, max_age_seconds=ingest_max_age_seconds),
        )
        return Readiness(status="not ready", checks=checks)
    fresh = [b for b in beats if b.fresh(now)]
    newest = max((b.beat for b in beats), default=None)
    newest_age = round((now - newest).total_seconds(), 1) if newest is not None else None
    if fresh:
        workers_detail = f"{len(fresh)} worker(s) beat within {FRESH_PERIODS} periods"
    elif beats:
        workers_detail = f"no worker beat within {FRESH_PERIODS} periods; the newest beat {newest_age} s ago"
    else:
        workers_detail = "no worker has beaten: none is running"
    oldest_age = round((now - oldest_queued).total_seconds(), 1) if oldest_queued is not None else None
    stuck = oldest_age is not None and oldest_age > ingest_max_age_seconds
    if oldest_age is None:
        ingest_detail = "nothing waits to be stored"
    elif stuck:
        ingest_detail = f"an entry has waited {oldest_age} s to be stored (bound {ingest_max_age_seconds} s)"
    else:
        ingest_detail = f"{queued} entries queued, the oldest {oldest_age} s"
    checks = Checks(
        redis=RedisCheck(ok=True, detail="answered", latency_ms=latency_ms),
        workers=WorkersCheck(
            ok=bool(fresh),
            detail=workers_detail,
            fresh=len(fresh),
            known=len(beats),
            newest_beat_age_seconds=newest_age,
        ),
        ingest=IngestCheck(
            ok=not stuck,
            detail=ingest_detail,
            queued=queued,
            oldest_age_seconds=oldest_age,
            max_age_seconds=ingest_max_age_seconds,
        ),
    )
    ready = checks.redis.ok and checks.workers.ok and checks.ingest.ok
    return Readiness(status="ready" if ready else "not ready", checks=checks)
