"""What operators read: every source's row, the queues, the workers. Read by ``tributary status``
and ``tributary sources``, the admin page and ``/metrics``, so all three say the same thing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service import keys
from service.config import SourceConfig
from service.models import PushStatus, SourceState
from service.status import Health, explain, health
from service.store.dead_letters import DeadLetters, Kind
from service.store.heartbeats import Heartbeats
from service.store.source_state import SourceStates
from service.workers_status import WorkerHeartbeat

LATE_GRACE_SECONDS = 60
"""A source due longer ago than this and not claimed is late (no worker took it)."""


@dataclass(frozen=True)
class SourceRow:
    source: SourceConfig
    state: SourceState
    health: Health
    articles_24h: int
    why: str
    """Why it waits (:func:`service.status.explain`)."""
    now: datetime

    @property
    def id(self) -> str:
        return self.source.id

    def as_json(self) -> dict[str, object]:
        state = self.state
        return {
            "id": self.id,
            "name": self.source.display_name,
            "url": state.current_url or self.source.url,
            "health": self.health.value,
            "last_status": state.last_status,
            "last_error_kind": state.last_error_kind.value if state.last_error_kind else None,
            "last_error": state.last_error,
            "last_poll": state.last_poll.isoformat() if state.last_poll else None,
            "last_success": state.last_success.isoformat() if state.last_success else None,
            "consecutive_failures": state.consecutive_failures,
            "next_poll": state.next_poll.isoformat() if state.next_poll else None,
            "next_poll_reason": state.next_poll_reason,
            "why": self.why,
            "interval_seconds": self.source.interval_seconds,
            "articles_24h": self.articles_24h,
            "tags": self.source.tags,
            "push": self.push_json(),
        }

    def push_json(self) -> dict[str, object] | None:
        """The subscription to the publisher's hub (None without one): what ``GET /push`` lists."""
        push = self.state.push
        if push is None:
            return None
        return {
            "status": push.status.value,
            "live": push.live(self.now),
            "hub": push.hub,
            "lease_end": push.lease_end.isoformat() if push.lease_end else None,
            "last_delivery": push.last_delivery.isoformat() if push.last_delivery else None,
            "deliveries": push.deliveries,
            "misses": push.misses,
            "error": push.error,
        }


@dataclass
class Overview:
    now: datetime
    health: Counter[Health] = field(default_factory=Counter)
    push: Counter[PushStatus] = field(default_factory=Counter)
    """Sources with a subscription to their publisher's hub, by its status."""
    ingest_length: int = 0
    ingest_pending: int = 0
    ingest_oldest_seconds: float = 0.0
    queue_depth: int = 0
    late_sources: int = 0
    late_max_seconds: float = 0.0
    paused_hosts: int = 0
    dead_letters: dict[Kind, int] = field(default_factory=dict)
    workers: list[WorkerHeartbeat] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "now": self.now.isoformat(),
            "sources": {h.value: self.health.get(h, 0) for h in Health},
            "push": {p.value: self.push.get(p, 0) for p in PushStatus},
            "ingest": {
                "length": self.ingest_length,
                "pending": self.ingest_pending,
                "oldest_seconds": round(self.ingest_oldest_seconds, 1),
            },
            "queue_depth": self.queue_depth,
            "late_sources": self.late_sources,
            "late_max_seconds": round(self.late_max_seconds, 1),
            "paused_hosts": self.paused_hosts,
            "dead_letters": self.dead_letters,
            "workers": [
                {
                    "id": w.id,
                    "host": w.host,
                    "pid": w.pid,
                    "last_beat": w.beat.isoformat(),
                    "fresh": w.fresh(self.now),
                    "jobs_running": w.jobs_running,
                    "jobs_done": w.jobs_done,
                    "jobs_failed": w.jobs_failed,
                }
                for w in self.workers
            ],
        }


async def source_rows(redis: Redis, sources: Sequence[SourceConfig], now: datetime) -> list[SourceRow]:
    """The sources with their states, in the order given (the config's, for ``settings.sources``)."""
    states = await SourceStates(redis).get_many([s.id for s in sources])
    day_ago = (now - timedelta(days=1)).timestamp()
    async with redis.pipeline(transaction=False) as pipe:
        for source in sources:
            pipe.zcount(keys.source_index(source.id), day_ago, "+inf")
        counts = await pipe.execute() if sources else []
    rows = []
    for source, count in zip(sources, counts, strict=True):
        state = states[source.id]
        rows.append(
            SourceRow(
                source,
                state,
                health(source, state, now),
                int(count),
                explain(state.next_poll_reason, source, state),
                now,
            )
        )
    return rows


async def workers_status(redis: Redis) -> list[WorkerHeartbeat]:
    """Every worker process still on record with its last heartbeat, newest first."""
    return await Heartbeats(redis).all()


async def overview(redis: Redis, rows: list[SourceRow], now: datetime) -> Overview:
    result = Overview(
        now,
        health=Counter(row.health for row in rows),
        push=Counter(row.state.push.status for row in rows if row.state.push is not None),
    )
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.INGEST_STREAM)
        pipe.xrange(keys.INGEST_STREAM, count=1)
        pipe.zcard(keys.ARQ_QUEUE)
        pipe.zrangebyscore(keys.SCHEDULE, "-inf", now.timestamp() - LATE_GRACE_SECONDS, withscores=True)
        length, first, depth, late = await pipe.execute()
    result.ingest_length, result.queue_depth = int(length), int(depth)
    if first:
        result.ingest_oldest_seconds = max(now.timestamp() - int(first[0][0].decode().split("-")[0]) / 1000, 0.0)
    if length:
        try:
            summary = await redis.xpending(keys.INGEST_STREAM, keys.INGEST_GROUP)
            result.ingest_pending = int(summary["pending"])
        except ResponseError:  # no consumer group yet
            result.ingest_pending = 0
    result.late_sources = len(late)
    result.late_max_seconds = max((now.timestamp() - score for _, score in late), default=0.0)
    result.paused_hosts = await SourceStates(redis).paused_hosts(now)
    result.dead_letters = await DeadLetters(redis).counts()
    result.workers = await workers_status(redis)
    return result
