"""Webhooks of API keys: where change records are POSTed, how far each got, what each delivery did.

Layout (names in :mod:`service.keys`): ``api:webhooks`` hash id -> :class:`Webhook` JSON
(callback URL, signing secret, the change-log position delivered up to, the sequence number of
the last delivery); ``api:webhook:{id}:log`` the newest deliveries, newest first (capped).

A webhook moves forward only when a delivery succeeded (compare-and-set on its position), so a
failed delivery is retried with the same records and the same sequence number; a replay moves
the position back and the following deliveries carry new sequence numbers.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.models import UtcDatetime

LOG_KEEP = 200


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    key: str
    """The API key it belongs to: its feed scope applies."""
    url: str
    secret: str
    feed: str | None = None
    """Only changes of this merged feed (within the key's scope); None: the key's whole scope."""
    position: str
    """The change-log position delivered up to."""
    seq: int = 0
    """Sequence number of the last delivery: each new delivery is seq + 1, so a gap shows."""
    created: UtcDatetime
    paused_until: UtcDatetime | None = None
    failures: int = 0
    """Failed tries of the current delivery."""


class Delivery(BaseModel):
    """One delivery attempt, for the log an operator reads."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    at: UtcDatetime
    attempt: int
    outcome: Literal["delivered", "failed", "behind_retention"]
    status: int | None = None
    """HTTP status of the answer; None when none came."""
    error: str | None = None
    records: int = 0
    first: str | None = None
    last: str | None = None
    replay: bool = False


class WebhookStore:
    def __init__(self, redis: Redis):
        self.redis = redis

    async def add(self, key: str, url: str, position: str, now: datetime, *, feed: str | None = None) -> Webhook:
        hook = Webhook(
            id=secrets.token_hex(8),
            key=key,
            url=url,
            secret=secrets.token_urlsafe(32),
            feed=feed,
            position=position,
            created=now,
        )
        await self.redis.hset(keys.WEBHOOKS, hook.id, hook.model_dump_json())
        return hook

    async def get(self, webhook_id: str) -> Webhook | None:
        raw = await self.redis.hget(keys.WEBHOOKS, webhook_id)
        return Webhook.model_validate_json(raw) if raw else None

    async def all(self) -> list[Webhook]:
        raws = await self.redis.hgetall(keys.WEBHOOKS)
        return sorted((Webhook.model_validate_json(r) for r in raws.values()), key=lambda h: (h.key, h.created))

    async def remove(self, webhook_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.WEBHOOKS, webhook_id)
            pipe.delete(keys.webhook_log(webhook_id))
            removed, _ = await pipe.execute()
        return bool(removed)

    async def remove_of_key(self, key: str) -> int:
        """Drop every webhook of a revoked key."""
        doomed = [h.id for h in await self.all() if h.key == key]
        for webhook_id in doomed:
            await self.remove(webhook_id)
        return len(doomed)

    async def update(self, webhook_id: str, expected_position: str | None, **changes: object) -> Webhook | None:
        """Apply ``changes`` unless the webhook is gone or (with ``expected_position``) moved meanwhile."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(keys.WEBHOOKS)
                    raw = await pipe.hget(keys.WEBHOOKS, webhook_id)
                    if raw is None:
                        await pipe.unwatch()
                        return None
                    hook = Webhook.model_validate_json(raw)
                    if expected_position is not None and hook.position != expected_position:
                        await pipe.unwatch()
                        return None
                    hook = hook.model_copy(update=changes)
                    pipe.multi()
                    pipe.hset(keys.WEBHOOKS, webhook_id, hook.model_dump_json())
                    await pipe.execute()
                    return hook
                except WatchError:
                    continue

    async def log(self, webhook_id: str, delivery: Delivery) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.webhook_log(webhook_id), delivery.model_dump_json())
            pipe.ltrim(keys.webhook_log(webhook_id), 0, LOG_KEEP - 1)
            await pipe.execute()

    async def deliveries(self, webhook_id: str, count: int = 50) -> list[Delivery]:
        raws = await self.redis.lrange(keys.webhook_log(webhook_id), 0, count - 1)
        return [Delivery.model_validate_json(raw) for raw in raws]

    async def lock(self, webhook_id: str, token: str, seconds: int) -> bool:
        """One delivery at a time per webhook, across workers (released by :meth:`unlock`)."""
        return bool(await self.redis.set(keys.webhook_lock(webhook_id), token, nx=True, ex=seconds))

    async def unlock(self, webhook_id: str, token: str) -> None:
        key = keys.webhook_lock(webhook_id)
        if (await self.redis.get(key) or b"").decode() == token:
            await self.redis.delete(key)
