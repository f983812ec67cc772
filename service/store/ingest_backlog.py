"""How far behind storing is: the ingest stream holds only what is not stored yet (an entry is
deleted when it is acknowledged), so its length and its first entry's id (a millisecond
timestamp) tell how much waits and since when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from service import keys


@dataclass(frozen=True)
class Backlog:
    queued: int
    oldest: datetime | None


async def ingest_backlog(redis: Redis) -> Backlog:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.INGEST_STREAM)
        pipe.xrange(keys.INGEST_STREAM, "-", "+", count=1)
        length, first = await pipe.execute()
    if not first:
        return Backlog(int(length), None)
    entry_id = first[0][0]
    millis = int((entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)).split("-")[0])
    return Backlog(int(length), datetime.fromtimestamp(millis / 1000, UTC))
