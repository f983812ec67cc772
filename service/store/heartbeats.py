"""Worker heartbeats in Redis: each worker process writes its :class:`WorkerHeartbeat` under its
own key with a TTL and its beat time in one index; readers get every worker still on record."""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from redis.asyncio import Redis

from service import keys
from service.workers_status import WorkerHeartbeat

MAX_WORKERS_READ = 1000


class Heartbeats:
    def __init__(self, redis: Redis):
        self.redis = redis

    async def beat(self, heartbeat: WorkerHeartbeat) -> None:
        """Write one beat; index entries of workers whose records expired are dropped on the way."""
        ttl = heartbeat.ttl_seconds()
        horizon = (heartbeat.beat - timedelta(seconds=ttl)).timestamp()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.worker(heartbeat.id), heartbeat.model_dump_json(), ex=ttl)
            pipe.zadd(keys.WORKERS, {heartbeat.id: heartbeat.beat.timestamp()})
            pipe.zremrangebyscore(keys.WORKERS, "-inf", horizon)
            await pipe.execute()

    async def forget(self, worker_id: str) -> None:
        """A worker that stops in order takes itself off the record."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.worker(worker_id))
            pipe.zrem(keys.WORKERS, worker_id)
            await pipe.execute()

    async def all(self) -> list[WorkerHeartbeat]:
        """Every worker whose last beat is still on record, newest beat first."""
        ids = await self.redis.zrevrange(keys.WORKERS, 0, MAX_WORKERS_READ - 1)
        if not ids:
            return []
        found = []
        for raw in await self.redis.mget([keys.worker(i.decode()) for i in ids]):
            if raw is None:
                continue  # expired: the index entry goes at the next beat of any worker
            try:
                found.append(WorkerHeartbeat.model_validate_json(raw))
            except ValidationError:
                continue  # written by a version that no longer reads the same
        return found
