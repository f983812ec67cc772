"""Signed fat pings waiting for their ingest: the web side puts, a worker job takes them all.

``source:{id}:push-inbox`` is a list of framed deliveries (the content type, a newline, the
body). Bounded in count and time: a hub flooding one source keeps only the newest
:data:`MAX_QUEUED` (each is a whole feed document: the newest carry what the older did), and a
list nobody takes expires, the slow backup poll covering what it held.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from service import keys

MAX_QUEUED = 20
TTL_SECONDS = 3600


@dataclass(frozen=True)
class Delivery:
    content_type: str
    body: bytes


class PushInbox:
    def __init__(self, redis: Redis):
        self.redis = redis

    async def put(self, source_id: str, delivery: Delivery) -> None:
        key = keys.push_inbox(source_id)
        framed = delivery.content_type.encode("latin-1", "replace") + b"\n" + delivery.body
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, framed)
            pipe.ltrim(key, -MAX_QUEUED, -1)
            pipe.expire(key, TTL_SECONDS)
            await pipe.execute()

    async def take(self, source_id: str) -> list[Delivery]:
        """Everything waiting, oldest first, removed in the same transaction."""
        key = keys.push_inbox(source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            framed, _ = await pipe.execute()
        deliveries = []
        for raw in framed:
            content_type, _, body = bytes(raw).partition(b"\n")
            deliveries.append(Delivery(content_type.decode("latin-1"), body))
        return deliveries
