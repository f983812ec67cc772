"""Fault: the WebSub hub had no limits. 2,000 subscription requests in about a second were all
accepted, each verified, and every later change sent 2,000 deliveries. Now the client's bucket
refuses nearly all of them at once, verification GETs wait for the callback host's budget, and
the subscriptions a host may hold are capped, so deliveries are too."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

from service import keys
from service.config import settings_from_dict
from service.store.articles import Store
from service.web.app import create_app
from tests.subscriber import Subscriber
from workers.fetch.client import new_session
from workers.hub import deliveries
from workers.resources import Resources

BASE = "http://feeds.test"
TOPIC = f"{BASE}/feeds/news.atom"
FLOOD = 2000
PER_MINUTE = 60
HOST_CAP = 5


async def test_a_subscription_flood(redis, clock, aiohttp_client, subscriber: Subscriber) -> None:  # type: ignore[no-untyped-def]
    config = settings_from_dict(
        {
            "server": {"base_url": BASE},
            "fetch": {"allow_private_networks": True, "host_requests_per_minute": PER_MINUTE},
            "websub": {
                "client_requests_per_minute": PER_MINUTE,
                "callback_host_requests_per_minute": 10 * PER_MINUTE,
                "max_subscriptions_per_callback_host": HOST_CAP,
            },
            "sources": [{"id": "src", "url": "https://src.example/feed"}],
            "feeds": [{"name": "news", "title": "News", "sources": ["src"]}],
        }
    )
    client = await aiohttp_client(create_app(config, redis=redis, clock=clock))
    callbacks = [subscriber.callback(f"c{n}") for n in range(FLOOD)]

    async def post(callback: str) -> int:
        form = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback}
        async with client.session.post(client.make_url("/hub"), data=form) as response:
            return int(response.status)

    started = time.monotonic()
    statuses: Counter[int] = Counter()
    for start in range(0, FLOOD, 100):
        statuses.update(await asyncio.gather(*(post(cb) for cb in callbacks[start : start + 100])))
    elapsed = time.monotonic() - started
    # The bucket holds a minute's worth and refills one a second: the flood gets that, no more.
    assert statuses[202] <= PER_MINUTE + math.ceil(elapsed) and statuses[202] + statuses[429] == FLOOD
    parked = [key async for key in redis.scan_iter(match=keys.hub_request("*"))]
    assert len(parked) == statuses[202] == await redis.zcard(keys.ARQ_QUEUE)

    res = Resources(config, redis, Store(redis, config), new_session(config.fetch), clock)
    outcomes: Counter[deliveries.VerifyStatus] = Counter()
    verifying = time.monotonic()
    try:
        for key in parked:
            request_id = key.decode().rsplit(":", 1)[1]
            outcomes[await deliveries.verify(res, request_id)] += 1
    finally:
        await res.session.close()
    elapsed = time.monotonic() - verifying
    gets = sum(len(cb.gets) for cb in subscriber.callbacks.values())
    # One GET per verification or denial, within the host's budget (a sixth of a minute's worth
    # at once, then one a second); the others are deferred, not sent.
    assert gets == outcomes[deliveries.VerifyStatus.VERIFIED] + outcomes[deliveries.VerifyStatus.DENIED]
    assert gets <= PER_MINUTE // 6 + math.ceil(elapsed)
    assert outcomes[deliveries.VerifyStatus.DEFERRED] == len(parked) - gets
    # However many pass verification, a callback host holds at most its cap of subscriptions,
    # and a feed change is delivered to those only.
    assert outcomes[deliveries.VerifyStatus.VERIFIED] <= HOST_CAP
    assert await deliveries.hub_store(config, redis).live_count("news", clock()) <= HOST_CAP
