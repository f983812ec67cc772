"""The WebSub hub end to end: a local subscriber, the real app, a real arq worker on a real Redis.

subscribe -> verification GET echoes the challenge -> subscription stored; a source change ->
the subscriber receives only the changed items, signed, with Link headers; a failing subscriber
gets the delivery after retries; unsubscribe, lease expiry, a 410, a non-echoing subscriber and
invalid requests. No mocks: the subscriber is an aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import feedparser
import pytest
from aiohttp.test_utils import TestClient

from service import keys
from service.config import Settings, settings_from_dict
from service.hub.protocol import HubRequest, Topic
from service.hub.subscriptions import HubStore
from service.web.app import create_app
from tests.conftest import ManualClock
from tests.feedserver import FeedServer
from workers.settings import build_worker

BASE = "http://feeds.test"
ATOM_TOPIC = f"{BASE}/feeds/news.atom"
JSON_TOPIC = f"{BASE}/feeds/news.json"


def rss(items: list[tuple[str, str]]) -> str:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>https://src.example/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid><pubDate>Tue, 24 Nov 2026 0{i}:00:00 GMT</pubDate>'
        f"<description>{escape(title)} body</description></item>"
        for i, (guid, title) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>src</title><link>https://src.example/</link><description>d</description>{entries}</channel></rss>'


def hub_settings(server: FeedServer) -> Settings:
    url = server.set("/src.rss", rss([("a1", "First story")]), content_type="application/rss+xml")
    return settings_from_dict(
        {
            "server": {"base_url": BASE},
            "fetch": {"allow_private_networks": True, "timeout_seconds": 5, "jitter_fraction": 0},
            "websub": {"retry_base_seconds": 0.02, "delivery_attempts": 4, "min_lease_seconds": 300},
            "sources": [{"id": "src", "url": url, "interval_seconds": 60, "adaptive": False}],
            "feeds": [{"name": "news", "title": "News", "sources": ["src"]}],
        }
    )


async def run_worker(settings: Settings, redis_url: str, clock: ManualClock) -> None:
    worker = build_worker(settings, redis_url, clock=clock, burst=True, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()


@pytest.fixture
async def hub(redis, redis_url, feed_server, clock, aiohttp_client):  # type: ignore[no-untyped-def]
    settings = hub_settings(feed_server)
    client: TestClient = await aiohttp_client(create_app(settings, redis=redis, clock=clock))
    await run_worker(settings, redis_url, clock)  # first poll: the feed has content before anyone subscribes
    return settings, client


async def hub_post(client: TestClient, **params: str):  # type: ignore[no-untyped-def]
    return await client.post("/hub", data={f"hub.{k}": v for k, v in params.items()})


async def subscribe(client: TestClient, callback: str, topic: str = ATOM_TOPIC, **extra: str) -> None:
    response = await hub_post(client, mode="subscribe", topic=topic, callback=callback, **extra)
    assert response.status == 202, await response.text()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def publish(
    settings: Settings, redis_url: str, clock: ManualClock, feed_server: FeedServer, items: list[tuple[str, str]]
) -> None:
    """The source changes; the next poll ingests it and the hub fans it out."""
    feed_server.set("/src.rss", rss(items), content_type="application/rss+xml")
    clock.advance(61)
    await run_worker(settings, redis_url, clock)


async def test_websub_journey(hub, redis, redis_url, feed_server, clock, subscriber) -> None:  # type: ignore[no-untyped-def]
    settings, client = hub
    store = HubStore(redis, settings.websub.max_lease_seconds)
    signed = subscriber.callback("signed")
    flaky = subscriber.callback("flaky", post_statuses=[500, 500])
    short = subscriber.callback("short")
    liar = subscriber.callback("liar", verify="wrong")
    refuser = subscriber.callback("refuser", verify="404")
    gone = subscriber.callback("gone", post_statuses=[410])
    mover = subscriber.callback("mover", verify="redirect")

    await subscribe(client, signed, secret="s3cret", lease_seconds="3600")
    await subscribe(client, flaky, topic=JSON_TOPIC)
    await subscribe(client, short, lease_seconds="10")  # clamped up to min_lease_seconds
    await subscribe(client, liar)
    await subscribe(client, refuser)
    await subscribe(client, gone, topic=f"{BASE}/feeds/news")  # negotiated topic: delivered as Atom
    await subscribe(client, mover)
    await run_worker(settings, redis_url, clock)

    # Verification of intent: one GET each, with mode, topic, challenge and the hub's lease.
    verify = subscriber.callbacks["signed"].gets[0]
    assert verify["hub.mode"] == "subscribe" and verify["hub.topic"] == ATOM_TOPIC
    assert verify["hub.lease_seconds"] == "3600" and len(verify["hub.challenge"]) >= 32
    assert verify["token"] == "t-signed"  # the callback's own query string is kept
    assert subscriber.callbacks["short"].gets[0]["hub.lease_seconds"] == "300"
    assert subscriber.callbacks["flaky"].gets[0]["hub.lease_seconds"] == str(settings.websub.default_lease_seconds)
    assert len({cb.gets[0]["hub.challenge"] for cb in subscriber.callbacks.values()}) == 7
    assert len(subscriber.callbacks["mover"].gets) == 1  # a redirect is a failed verification, not followed
    live = await store.live_subscriptions("news", clock())
    assert {s.callback for s in live} == {signed, flaky, short, gone}  # liar, refuser and mover were not
    assert all(not cb.posts for cb in subscriber.callbacks.values())  # nothing changed yet, nothing sent
    listing = await (await client.get("/hub")).json()
    assert listing["feeds"] == [{"name": "news", "subscriptions": 4}] and listing["hub"] == f"{BASE}/hub"
    raw = await redis.get(keys.hub_subscription(next(s.id for s in live if s.callback == signed)))
    assert json.loads(raw)["secret"] == "s3cret"  # stored for signing (never logged)

    # A change: the new item alone goes to every live subscriber, in the topic's format.
    await publish(settings, redis_url, clock, feed_server, [("a1", "First story"), ("a2", "Second story")])
    [(headers, body)] = subscriber.callbacks["signed"].delivered
    assert headers["Content-Type"].startswith("application/atom+xml")
    assert headers["Link"] == f'<{BASE}/hub>; rel="hub", <{ATOM_TOPIC}>; rel="self"'
    assert headers["X-Hub-Signature"] == sign("s3cret", body)
    assert headers["X-Hub-Signature"] != sign("wrong-secret", body)
    parsed = feedparser.parse(body)
    assert not parsed.bozo and [e.title for e in parsed.entries] == ["Second story"]

    # The flaky subscriber answered 500 twice; the third try (after backoff) got through.
    flaky_posts = subscriber.callbacks["flaky"].posts
    assert [status for _, _, status in flaky_posts] == [500, 500, 200]
    assert len({body for _, body, _ in flaky_posts}) == 1  # the same payload each try
    delivered = json.loads(flaky_posts[-1][1])
    assert [item["title"] for item in delivered["items"]] == ["Second story"]
    assert flaky_posts[-1][0]["Content-Type"].startswith("application/feed+json")
    assert "X-Hub-Signature" not in flaky_posts[-1][0]  # subscribed without a secret
    assert len(subscriber.callbacks["short"].delivered) == 1

    # 410 Gone from a callback ends its subscription.
    assert [status for _, _, status in subscriber.callbacks["gone"].posts] == [410]
    assert gone not in {s.callback for s in await store.live_subscriptions("news", clock())}

    # An updated item is "changed" too; an unchanged re-poll sends nothing.
    await publish(settings, redis_url, clock, feed_server, [("a1", "First story"), ("a2", "Second story")])
    assert len(subscriber.callbacks["signed"].delivered) == 1
    await publish(settings, redis_url, clock, feed_server, [("a1", "First story (corrected)"), ("a2", "Second story")])
    [_, (_, body)] = subscriber.callbacks["signed"].delivered
    assert [e.title for e in feedparser.parse(body).entries] == ["First story (corrected)"]

    # Unsubscribe is verified too, then nothing more arrives.
    response = await hub_post(client, mode="unsubscribe", topic=ATOM_TOPIC, callback=signed)
    assert response.status == 202
    await run_worker(settings, redis_url, clock)
    unsub = subscriber.callbacks["signed"].gets[-1]
    assert unsub["hub.mode"] == "unsubscribe" and unsub["hub.topic"] == ATOM_TOPIC and "hub.challenge" in unsub
    # The short lease (300 s from its verification) has run out by now.
    clock.advance(300)
    await publish(
        settings,
        redis_url,
        clock,
        feed_server,
        [("a1", "First story (corrected)"), ("a2", "Second story"), ("a3", "Third")],
    )
    assert len(subscriber.callbacks["signed"].delivered) == 2
    assert len(subscriber.callbacks["short"].delivered) == 2
    assert [i["title"] for i in json.loads(subscriber.callbacks["flaky"].delivered[-1][1])["items"]] == ["Third"]
    assert (await (await client.get("/hub")).json())["subscriptions"] == 1


async def test_unknown_feed_is_denied(hub, redis_url, clock, subscriber) -> None:  # type: ignore[no-untyped-def]
    settings, client = hub
    callback = subscriber.callback("nosuch")
    await subscribe(client, callback, topic=f"{BASE}/feeds/nosuch.rss")
    await run_worker(settings, redis_url, clock)
    [denied] = subscriber.callbacks["nosuch"].gets
    assert denied["hub.mode"] == "denied" and denied["hub.topic"] == f"{BASE}/feeds/nosuch.rss"
    assert "nosuch" in denied["hub.reason"] and "hub.challenge" not in denied


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({}, "hub.mode"),
        ({"hub.mode": "publish", "hub.topic": ATOM_TOPIC, "hub.callback": "http://x.test/cb"}, "hub.mode"),
        ({"hub.mode": "subscribe", "hub.callback": "http://x.test/cb"}, "hub.topic"),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": "http://elsewhere.test/feeds/news.atom",
                "hub.callback": "http://x.test/cb",
            },
            "hub.topic",
        ),
        (
            {"hub.mode": "subscribe", "hub.topic": f"{BASE}/feeds/news.xml", "hub.callback": "http://x.test/cb"},
            "hub.topic",
        ),
        (
            {"hub.mode": "subscribe", "hub.topic": f"{ATOM_TOPIC}?tag=x", "hub.callback": "http://x.test/cb"},
            "hub.topic",
        ),
        ({"hub.mode": "subscribe", "hub.topic": ATOM_TOPIC}, "hub.callback"),
        ({"hub.mode": "subscribe", "hub.topic": ATOM_TOPIC, "hub.callback": "ftp://x.test/cb"}, "http or https"),
        ({"hub.mode": "subscribe", "hub.topic": ATOM_TOPIC, "hub.callback": "javascript:alert(1)"}, "http or https"),
        ({"hub.mode": "subscribe", "hub.topic": ATOM_TOPIC, "hub.callback": "http:///cb"}, "no host"),
        (
            {"hub.mode": "subscribe", "hub.topic": ATOM_TOPIC, "hub.callback": "http://x.test/" + "a" * 3000},
            "longer than",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": ATOM_TOPIC,
                "hub.callback": "http://x.test/cb",
                "hub.secret": "s" * 200,
            },
            "200 bytes",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": ATOM_TOPIC,
                "hub.callback": "http://x.test/cb",
                "hub.lease_seconds": "soon",
            },
            "lease",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": ATOM_TOPIC,
                "hub.callback": "http://x.test/cb",
                "hub.lease_seconds": "-5",
            },
            "lease",
        ),
    ],
)
async def test_invalid_requests_get_400(redis, clock, aiohttp_client, feed_server, form, reason) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(hub_settings(feed_server), redis=redis, clock=clock))
    response = await client.post("/hub", data=form)
    assert response.status == 400
    assert response.content_type == "text/plain"
    assert reason in await response.text()
    assert await redis.zcard(keys.ARQ_QUEUE) == 0  # nothing queued for a refused request


async def test_hub_wants_a_form(redis, clock, aiohttp_client, feed_server) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(hub_settings(feed_server), redis=redis, clock=clock))
    response = await client.post("/hub", json={"hub.mode": "subscribe"})
    assert response.status == 400 and "x-www-form-urlencoded" in await response.text()
    ok = await client.post(
        "/hub",
        data={
            "hub.mode": "subscribe",
            "hub.topic": ATOM_TOPIC,
            "hub.callback": "https://x.test/cb",
            "extra": "ignored",
        },
    )
    assert ok.status == 202
    assert await redis.zcard(keys.ARQ_QUEUE) == 1
    huge = await client.post("/hub", data={"hub.mode": "subscribe", "pad": "x" * 20000})
    assert huge.status == 413


async def test_chunked_form_is_read_whole(redis, clock, aiohttp_client, feed_server) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(hub_settings(feed_server), redis=redis, clock=clock))
    form = f"hub.mode=subscribe&hub.topic={ATOM_TOPIC}&hub.callback=https://x.test/cb".encode()

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(form), 7):
            yield form[i : i + 7]

    response = await client.post("/hub", data=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 202, await response.text()


async def test_later_request_wins_when_verified_out_of_order(redis, clock) -> None:  # type: ignore[no-untyped-def]
    store = HubStore(redis, 864000)
    topic = Topic(url=ATOM_TOPIC, feed="news", fmt="atom")
    now = datetime(2026, 11, 25, tzinfo=UTC)

    def request(seq: int, mode: str) -> HubRequest:
        return HubRequest(id=f"r{seq}", seq=seq, mode=mode, topic=topic, callback="http://x.test/cb", received=now)  # type: ignore[arg-type]

    assert await store.apply(request(2, "unsubscribe"), 3600, now) is not None
    assert await store.apply(request(1, "subscribe"), 3600, now) is None  # older, verified later: ignored
    assert await store.live_subscriptions("news", now) == []
    assert await store.apply(request(3, "subscribe"), 3600, now) is not None
    assert len(await store.live_subscriptions("news", now)) == 1


async def test_delivery_gives_up_after_the_configured_tries_and_logs_no_secret(
    hub,
    redis,
    redis_url,
    feed_server,
    clock,
    subscriber,
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    settings, client = hub
    caplog.set_level("DEBUG")
    down = subscriber.callback("down", post_statuses=[503] * 10)
    await subscribe(client, down, secret="top-secret-value")
    await run_worker(settings, redis_url, clock)
    await publish(settings, redis_url, clock, feed_server, [("a1", "First story"), ("a2", "Second story")])
    assert [status for _, _, status in subscriber.callbacks["down"].posts] == [503] * settings.websub.delivery_attempts
    store = HubStore(redis, settings.websub.max_lease_seconds)
    assert len(await store.live_subscriptions("news", clock())) == 1  # failures never end a lease (spec 7)
    assert "top-secret-value" not in caplog.text
    assert "t-down" not in caplog.text  # nor the callback's capability query

    # Back up, re-subscribed with a new secret: it replaces the old one for the next delivery.
    subscriber.callbacks["down"].post_statuses.clear()
    await subscribe(client, down, secret="rotated")
    await run_worker(settings, redis_url, clock)
    await publish(
        settings, redis_url, clock, feed_server, [("a1", "First story"), ("a2", "Second story"), ("a3", "Third")]
    )
    headers, body = subscriber.callbacks["down"].delivered[-1]
    assert headers["X-Hub-Signature"] == sign("rotated", body)
    assert "rotated" not in caplog.text
