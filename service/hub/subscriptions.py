"""The WebSub hub's Redis side: parked requests, subscriptions, their leases, delivery payloads.

Layout (names in :mod:`service.keys`):

- ``websub:request:{id}``: a request awaiting verification of intent; the arq job carries only
  its id, so a secret never sits in a job payload and jobs stay small.
- ``websub:sub:{id}``: one subscription per topic + callback (id = hash of both), JSON.
- ``websub:feed:{name}:subs``: zset id -> lease expiry. Expiry is judged by the injected clock
  (so tests move time); Redis TTLs past the lease only collect what nobody reads any more.
- ``websub:host:{host}:subs``: the same per callback host, for ``[websub]
  max_subscriptions_per_callback_host``; lapsed members are simply not counted.
- ``websub:applied:{id}``: sequence number of the last verified request applied, so when a
  subscribe and an unsubscribe are verified out of order the later *request* wins (spec 5.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import WatchError

from service import keys
from service.hub.protocol import HubRequest, Subscription, callback_host

GRACE_SECONDS = 86400  # Redis keeps a lapsed subscription this long past its lease, then drops it
REQUEST_TTL_SECONDS = 86400  # a request not verified within a day is forgotten (arq jobs expire too)
PAYLOAD_TTL_SECONDS = 2 * 86400  # outlives every retry of the deliveries that read it


class SubscriptionLimit(Exception):
    """A new subscription would pass a cap; the message says which (sent as ``hub.reason``)."""


class HubStore:
    def __init__(
        self,
        redis: Redis,
        max_lease_seconds: int,
        *,
        max_per_feed: int | None = None,
        max_per_host: int | None = None,
    ):
        self.redis = redis
        self.max_lease_seconds = max_lease_seconds
        self.max_per_feed = max_per_feed
        self.max_per_host = max_per_host

    # -- requests awaiting verification ------------------------------------------------------

    async def next_seq(self) -> int:
        return int(await self.redis.incr(keys.HUB_SEQ))

    async def park(self, request: HubRequest) -> None:
        await self.redis.set(keys.hub_request(request.id), request.model_dump_json(), ex=REQUEST_TTL_SECONDS)

    async def parked(self, request_id: str) -> HubRequest | None:
        raw = await self.redis.get(keys.hub_request(request_id))
        return HubRequest.model_validate_json(raw) if raw else None

    async def unpark(self, request_id: str) -> None:
        await self.redis.delete(keys.hub_request(request_id))

    # -- subscriptions ----------------------------------------------------------------------

    async def limit_reached(self, request: HubRequest, now: datetime) -> str | None:
        """Why a subscribe would pass a cap (the feed's, the callback host's), else None; a
        renewal of a live subscription never does. Advisory: :meth:`apply` decides atomically."""
        if request.mode != "subscribe" or (self.max_per_feed is None and self.max_per_host is None):
            return None
        return await self._counted(self.redis, request, now)

    async def _counted(self, redis: Redis, request: HubRequest, now: datetime) -> str | None:
        """:meth:`limit_reached` on ``redis``: the client, or a pipeline WATCHing the counts."""
        if self.max_per_feed is None and self.max_per_host is None:
            return None
        if await redis.exists(keys.hub_subscription(request.subscription_id)):
            return None
        live = f"({now.timestamp()}"
        host = callback_host(request.callback)
        per_feed = keys.hub_feed_subscriptions(request.topic.feed)
        if self.max_per_feed is not None and await redis.zcount(per_feed, live, "+inf") >= self.max_per_feed:
            return f"feed {request.topic.feed!r} has the most subscriptions this hub allows ({self.max_per_feed})"
        per_host = keys.hub_host_subscriptions(host)
        if self.max_per_host is not None and await redis.zcount(per_host, live, "+inf") >= self.max_per_host:
            return f"callback host {host} has the most subscriptions this hub allows ({self.max_per_host})"
        return None

    async def apply(self, request: HubRequest, lease_seconds: int, now: datetime) -> Subscription | None:
        """Apply a verified request; ``None`` when a later request was applied already (stale).

        For a subscribe, returns the stored subscription; for an unsubscribe, the request's
        view of what was removed (its ``expires`` is ``now``). A new subscription past a cap
        raises :class:`SubscriptionLimit`; the counts are WATCHed, so concurrent verifications
        cannot pass a cap together.
        """
        sub_id = request.subscription_id
        applied_key = keys.hub_applied(sub_id)
        host_index = keys.hub_host_subscriptions(callback_host(request.callback))
        feed_index = keys.hub_feed_subscriptions(request.topic.feed)
        subscription = Subscription(
            id=sub_id,
            topic=request.topic,
            callback=request.callback,
            secret=request.secret,
            lease_seconds=lease_seconds,
            expires=now + timedelta(seconds=lease_seconds if request.mode == "subscribe" else 0),
            seq=request.seq,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(applied_key, keys.hub_subscription(sub_id), feed_index, host_index)
                    last = await pipe.get(applied_key)
                    if last is not None and int(last) >= request.seq:
                        await pipe.unwatch()
                        return None
                    if request.mode == "subscribe" and (reason := await self._counted(pipe, request, now)):
                        await pipe.unwatch()
                        raise SubscriptionLimit(reason)
                    pipe.multi()
                    pipe.set(applied_key, request.seq, ex=self.max_lease_seconds + GRACE_SECONDS)
                    if request.mode == "subscribe":
                        pipe.set(
                            keys.hub_subscription(sub_id),
                            subscription.model_dump_json(),
                            ex=lease_seconds + GRACE_SECONDS,
                        )
                        pipe.zadd(feed_index, {sub_id: subscription.expires.timestamp()})
                        pipe.zadd(host_index, {sub_id: subscription.expires.timestamp()})
                        pipe.expire(host_index, lease_seconds + GRACE_SECONDS)
                    else:
                        pipe.delete(keys.hub_subscription(sub_id))
                        pipe.zrem(feed_index, sub_id)
                        pipe.zrem(host_index, sub_id)
                    await pipe.execute()
                    return subscription
                except WatchError:
                    continue

    async def subscription(self, sub_id: str) -> Subscription | None:
        raw = await self.redis.get(keys.hub_subscription(sub_id))
        return Subscription.model_validate_json(raw) if raw else None

    async def live_subscriptions(self, feed_name: str, now: datetime) -> list[Subscription]:
        """Subscriptions of the feed whose lease has not run out; prunes the lapsed ones."""
        await self.prune(feed_name, now)
        index = keys.hub_feed_subscriptions(feed_name)
        ids = [i.decode() for i in await self.redis.zrangebyscore(index, f"({now.timestamp()}", "+inf")]
        if not ids:
            return []
        raws = await self.redis.mget([keys.hub_subscription(i) for i in ids])
        found = [Subscription.model_validate_json(raw) for raw in raws if raw is not None]
        vanished = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if vanished:
            await self.redis.zrem(index, *vanished)
        return [s for s in found if s.live(now)]

    async def prune(self, feed_name: str, now: datetime) -> int:
        """Drop subscriptions whose lease ended (spec 5.3.1: leases are enforced)."""
        index = keys.hub_feed_subscriptions(feed_name)
        lapsed = [i.decode() for i in await self.redis.zrangebyscore(index, "-inf", now.timestamp())]
        if not lapsed:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(index, *lapsed)
            pipe.delete(*(keys.hub_subscription(i) for i in lapsed))
            await pipe.execute()
        return len(lapsed)

    async def remove(self, subscription: Subscription) -> bool:
        """Drop a subscription the callback disowned (410), unless it was renewed meanwhile."""
        key = keys.hub_subscription(subscription.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None or Subscription.model_validate_json(raw).seq != subscription.seq:
                        await pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.delete(key)
                    pipe.zrem(keys.hub_feed_subscriptions(subscription.topic.feed), subscription.id)
                    pipe.zrem(keys.hub_host_subscriptions(callback_host(subscription.callback)), subscription.id)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def live_count(self, feed_name: str, now: datetime) -> int:
        return int(await self.redis.zcount(keys.hub_feed_subscriptions(feed_name), f"({now.timestamp()}", "+inf"))

    async def counts(self, feed_names: Iterable[str], now: datetime) -> dict[str, int]:
        return {name: await self.live_count(name, now) for name in feed_names}

    # -- payloads of one feed change ---------------------------------------------------------

    async def save_payload(self, feed_name: str, change: str, fmt: str, body: bytes) -> None:
        await self.redis.set(keys.hub_payload(feed_name, change, fmt), body, ex=PAYLOAD_TTL_SECONDS)

    async def payload(self, feed_name: str, change: str, fmt: str) -> bytes | None:
        body: bytes | None = await self.redis.get(keys.hub_payload(feed_name, change, fmt))
        return body
