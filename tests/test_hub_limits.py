"""WebSub hub limits: token buckets per client and per callback host (in Redis, shared by every
web process), caps on subscriptions per feed and per callback host, private callbacks refused at
once, verification GETs under the callback host's budget, guard refusals logged as refused."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any, Literal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service import keys
from service.config import Settings, settings_from_dict
from service.hub.protocol import HubRequest, Topic, private_callback
from service.hub.subscriptions import HubStore, SubscriptionLimit
from service.store.articles import Store
from service.web.app import create_app
from tests.conftest import ManualClock
from workers.fetch.client import new_session
from workers.hub import deliveries
from workers.resources import Resources

BASE = "http://feeds.test"
TOPIC = f"{BASE}/feeds/news.atom"


def settings(**websub: Any) -> Settings:
    fetch = websub.pop("fetch", {"allow_private_networks": True})
    return settings_from_dict(
        {
            "server": {"base_url": BASE},
            "fetch": fetch,
            "websub": websub,
            "sources": [{"id": "src", "url": "https://src.example/feed"}],
            "feeds": [{"name": "news", "title": "News", "sources": ["src"]}, {"name": "other", "title": "O"}],
        }
    )


async def post(
    client: TestClient[web.Request, web.Application], callback: str, topic: str = TOPIC, mode: str = "subscribe"
) -> int:
    response = await client.post("/hub", data={"hub.mode": mode, "hub.topic": topic, "hub.callback": callback})
    await response.read()
    return response.status


def request(
    callback: str, topic: str = TOPIC, seq: int = 1, mode: Literal["subscribe", "unsubscribe"] = "subscribe"
) -> HubRequest:
    name = topic.rsplit("/", 1)[1].split(".")[0]
    return HubRequest(
        id=uuid.uuid4().hex,
        seq=seq,
        mode=mode,
        topic=Topic(url=topic, feed=name, fmt="atom"),
        callback=callback,
        received=ManualClock().now,
    )


async def test_client_bucket_answers_429_with_retry_after(redis, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(settings(client_requests_per_minute=5), redis=redis, clock=clock))
    statuses = [await post(client, f"https://h{n}.example/cb") for n in range(8)]
    assert statuses == [202] * 5 + [429] * 3
    response = await client.post("/hub", data={})
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert await redis.zcard(keys.ARQ_QUEUE) == 5  # a refused request queues nothing


async def test_callback_host_bucket(redis, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings(callback_host_requests_per_minute=3), redis=redis, clock=clock)
    client = await aiohttp_client(app)
    same_host = [await post(client, f"https://victim.example/cb/{n}") for n in range(5)]
    assert same_host == [202] * 3 + [429] * 2
    assert await post(client, "https://other.example/cb") == 202  # another host has its own bucket


@pytest.mark.parametrize(
    "callback",
    [
        "http://127.0.0.1:9/cb",
        "http://[::1]/cb",
        "http://10.1.2.3/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:192.168.0.1]/cb",
        "http://localhost:8080/cb",
        "http://api.localhost/cb",
    ],
)
async def test_private_callbacks_are_refused_at_once(redis, clock, aiohttp_client, callback: str) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(settings(fetch={}), redis=redis, clock=clock))
    response = await client.post("/hub", data={"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback})
    text = await response.text()
    assert response.status == 400 and ("not a public address" in text or "loopback name" in text)
    assert await redis.zcard(keys.ARQ_QUEUE) == 0


def test_private_callback_needs_no_dns() -> None:
    assert private_callback("https://example.com/cb") is None  # a name: the fetch guard decides
    assert private_callback("https://93.184.216.34/cb") is None
    assert private_callback("http://127.0.0.1/cb") is not None


async def test_caps_per_feed_and_per_callback_host(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = HubStore(redis, 864000, max_per_feed=3, max_per_host=2)
    now = clock()
    await store.apply(request("https://a.example/1"), 3600, now)
    await store.apply(request("https://a.example/2"), 3600, now)
    with pytest.raises(SubscriptionLimit, match=r"a\.example"):
        await store.apply(request("https://a.example/3"), 3600, now)
    renewal = request("https://a.example/2", seq=2)
    assert await store.limit_reached(renewal, now) is None  # a renewal never counts twice
    assert await store.apply(renewal, 3600, now) is not None
    await store.apply(request("https://b.example/1"), 3600, now)
    assert "news" in (await store.limit_reached(request("https://c.example/1"), now) or "")
    assert await store.limit_reached(request("https://c.example/1", topic=f"{BASE}/feeds/other.atom"), now) is None
    # Unsubscribing and lapsing leases free places.
    await store.apply(request("https://a.example/1", seq=3, mode="unsubscribe"), 0, now)
    assert await store.limit_reached(request("https://a.example/9"), now) is None
    await store.apply(request("https://a.example/9"), 3600, now)
    assert await store.limit_reached(request("https://c.example/1"), now) is not None  # the feed is full again
    later = now + timedelta(hours=2)  # every lease has lapsed
    assert await store.limit_reached(request("https://c.example/1"), later) is None


async def test_a_full_feed_answers_403(redis, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings(max_subscriptions_per_feed=1), redis=redis, clock=clock)
    client = await aiohttp_client(app)
    await HubStore(redis, 864000).apply(request("https://a.example/1"), 3600, clock())
    response = await client.post(
        "/hub", data={"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": "https://b.example/"}
    )
    assert response.status == 403 and "most subscriptions" in await response.text()
    assert await post(client, "https://a.example/1") == 202  # renewing is always allowed
    assert await post(client, "https://b.example/", mode="unsubscribe") == 202


def resources(config: Settings, redis, clock, **session: Any) -> Resources:  # type: ignore[no-untyped-def]
    return Resources(config, redis, Store(redis, config), new_session(config.fetch, **session), clock)


async def test_verification_waits_for_the_callback_hosts_budget(redis, clock, subscriber) -> None:  # type: ignore[no-untyped-def]
    config = settings(fetch={"allow_private_networks": True, "host_requests_per_minute": 1})
    res = resources(config, redis, clock)
    store = deliveries.hub_store(config, redis)
    first, second = request(subscriber.callback("one")), request(subscriber.callback("two"))
    try:
        for parked in (first, second):
            await store.park(parked)
        assert await deliveries.verify(res, first.id) is deliveries.VerifyStatus.VERIFIED
        assert await deliveries.verify(res, second.id) is deliveries.VerifyStatus.DEFERRED
        assert subscriber.callbacks["two"].gets == []  # no request: the host's budget is spent
        assert await store.parked(second.id) is not None  # kept for the deferred job
        assert await redis.zcard(keys.ARQ_QUEUE) == 1
        gave_up = await deliveries.verify(res, second.id, deliveries.MAX_VERIFY_DEFERRALS)
        assert gave_up is deliveries.VerifyStatus.FAILED and await store.parked(second.id) is None
    finally:
        await res.session.close()


async def test_a_callback_the_guard_refuses_is_logged_refused(redis, clock, subscriber, caplog) -> None:  # type: ignore[no-untyped-def]
    config = settings(fetch={})
    res = resources(config, redis, clock, address_allowed=lambda address: False)
    store = deliveries.hub_store(config, redis)
    parked = request(subscriber.callback("inside"))
    await store.park(parked)
    try:
        with caplog.at_level(logging.INFO, logger="workers.hub.deliveries"):
            assert await deliveries.verify(res, parked.id) is deliveries.VerifyStatus.REFUSED
    finally:
        await res.session.close()
    assert subscriber.callbacks["inside"].gets == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("refused" in m for m in messages) and not any("failed" in m for m in messages)
