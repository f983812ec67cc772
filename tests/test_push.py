"""Push ingest end to end: Tributary as a WebSub subscriber of a real local hub.

The rig: a local feed server publishing a feed that names a hub, a local hub (tests/hubserver.py)
that verifies intent at our callback and delivers signed (or forged) fat and thin pings, the real
Tributary app on a real port (the hub calls it back over HTTP), and a real arq worker in burst
mode, all against the suite's real Redis. Time on Tributary's side is a manual clock.

Each subscriber step: discovery (RSS ``atom:link``, Atom ``link``, JSON Feed ``hubs``, HTTP
``Link`` headers), verification of intent (ours accepted; unknown ids, topics and modes refused;
a denial), signed fat pings ingested, forged ones ignored and counted, thin pings polled, bursts
coalesced, the pull as a slow backup, a miss falling back to polling, renewal at 80 % of the
lease, a lapsed lease, a hub that refuses, and unsubscribing a removed source.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from xml.sax.saxutils import escape

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from service import keys
from service.config import Settings, settings_from_dict
from service.models import PushStatus, PushSubscription, SourceState
from service.store.articles import Store
from service.web.app import create_app
from tests.conftest import ManualClock
from tests.feedserver import FeedServer
from tests.hubserver import LocalHub
from workers.settings import build_worker

LEASE = 3600
BACKUP = 86400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss(items: list[str], *, hub: str | None = None, self_url: str | None = None) -> str:
    links = ""
    if hub:
        links += f'<atom:link rel="hub" href="{hub}"/>'
    if self_url:
        links += f'<atom:link rel="self" href="{self_url}" type="application/rss+xml"/>'
    entries = "".join(
        f"<item><title>{escape(t)}</title><link>https://pub.example/{t}</link><guid>{t}</guid>"
        f"<pubDate>Tue, 24 Nov 2026 0{i % 10}:00:00 GMT</pubDate></item>"
        for i, t in enumerate(items)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>pub</title><link>https://pub.example/</link><description>d</description>{links}{entries}"
        "</channel></rss>"
    )


@dataclass
class Rig:
    config: dict[str, Any]
    settings: Settings
    client: TestClient
    hub: LocalHub
    feeds: FeedServer
    clock: ManualClock
    redis: Redis
    redis_url: str
    feed_url: str

    def variant(self, **sections: Any) -> Settings:
        """The rig's settings with whole sections replaced (what a restart with a new config reads)."""
        return settings_from_dict({**self.config, **sections})

    @property
    def store(self) -> Store:
        return Store(self.redis, self.settings)

    def publish(self, items: list[str], **extra: Any) -> None:
        """The publisher's feed now lists ``items`` (and names the hub, unless told otherwise)."""
        extra.setdefault("hub", self.hub.url)
        extra.setdefault("self_url", self.feed_url)
        self.feeds.set("/feed.xml", rss(items, **extra), content_type="application/rss+xml")

    async def work(self, settings: Settings | None = None) -> None:
        """A burst worker (what is due, then every job it queues), then the hub's verifications."""
        worker = build_worker(settings or self.settings, self.redis_url, clock=self.clock, burst=True, poll_delay=0.01)
        try:
            await worker.async_run()
        finally:
            await worker.close()
        await self.hub.settled()

    async def state(self) -> SourceState:
        return await self.store.sources.get("src")

    async def push(self) -> PushSubscription:
        push = (await self.state()).push
        assert push is not None
        return push

    async def titles(self) -> list[str]:
        response = await self.client.get("/feeds/news.json")
        return sorted(item["title"] for item in (await response.json())["items"])


def rig_config(port: int, feed_url: str, **push: Any) -> dict[str, Any]:
    return {
        "server": {"base_url": f"http://127.0.0.1:{port}"},
        "fetch": {"allow_private_networks": True, "timeout_seconds": 5, "jitter_fraction": 0},
        "push": {"enabled": True, "lease_seconds": LEASE, "backup_poll_seconds": BACKUP, "coalesce_ms": 50, **push},
        "sources": [{"id": "src", "url": feed_url, "interval_seconds": 60, "adaptive": False}],
        "feeds": [{"name": "news", "title": "News", "sources": ["src"]}],
    }


@pytest.fixture
async def hub() -> AsyncIterator[LocalHub]:
    server = LocalHub()
    await server.start()
    try:
        yield server
    finally:
        await server.settled()
        await server.stop()


@pytest.fixture
async def make_rig(redis, redis_url, feed_server, clock, hub, aiohttp_client):  # type: ignore[no-untyped-def]
    async def make(**push: Any) -> Rig:
        port = free_port()
        feed_url = feed_server.url("/feed.xml")
        config = rig_config(port, feed_url, **push)
        settings = settings_from_dict(config)
        app = create_app(settings, redis=redis, clock=clock)
        client = await aiohttp_client(TestServer(app, host="127.0.0.1", port=port))
        rig = Rig(config, settings, client, hub, feed_server, clock, redis, redis_url, feed_url)
        rig.publish(["a1"])
        return rig

    return make


@pytest.fixture
async def rig(make_rig) -> Rig:  # type: ignore[no-untyped-def]
    rig: Rig = await make_rig()
    await rig.work()  # the first poll discovers the hub; the subscription is requested and verified
    return rig


def callback_of(rig: Rig) -> str:
    return rig.hub.requests[-1]["hub.callback"]


# -- discovery and verification of intent ------------------------------------------------------


async def test_first_poll_discovers_the_hub_and_subscribes(rig: Rig) -> None:
    [request] = rig.hub.requests
    assert request["hub.mode"] == "subscribe" and request["hub.topic"] == rig.feed_url
    base = rig.settings.server.base_url
    assert request["hub.callback"].startswith(f"{base}/push/") and len(request["hub.callback"]) >= len(base) + 38
    assert request["hub.lease_seconds"] == str(LEASE) and len(request["hub.secret"]) >= 32
    [verification] = rig.hub.verifications
    assert verification.mode == "subscribe" and verification.echoed
    push = await rig.push()
    assert push.status is PushStatus.ACTIVE and push.hub == rig.hub.url and push.topic == rig.feed_url
    assert push.lease_end == rig.clock() + timedelta(seconds=LEASE) and push.live(rig.clock())
    assert push.secret == request["hub.secret"]
    # Operators see it (never the callback id nor the secret); the poll's own state is intact.
    listing = await (await rig.client.get("/push")).json()
    [entry] = listing["sources"]
    assert listing["enabled"] and listing["active"] == 1 and entry["source"] == "src"
    assert entry["push"]["status"] == "active" and entry["push"]["hub"] == rig.hub.url
    assert "secret" not in entry["push"] and "id" not in entry["push"]
    assert request["hub.callback"].rsplit("/", 1)[1] not in json.dumps(listing)
    assert (await rig.state()).last_success == rig.clock()
    stored = json.loads(await rig.redis.get(keys.source_state("src")))
    assert "push" not in stored  # the subscription lives under its own key


@pytest.mark.parametrize("verify", ["sync", "async"])
async def test_hub_verifying_before_or_after_answering(make_rig, verify: str) -> None:  # type: ignore[no-untyped-def]
    rig: Rig = await make_rig()
    rig.hub.verify = verify
    await rig.work()
    assert (await rig.push()).status is PushStatus.ACTIVE


ATOM = """<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>pub</title><id>urn:pub</id>
<updated>2026-11-24T00:00:00Z</updated>{links}<entry><id>urn:a1</id><title>a1</title><updated>2026-11-24T00:00:00Z</updated></entry></feed>"""


@pytest.mark.parametrize("kind", ["atom-link", "json-hubs", "link-header"])
async def test_discovery_from_atom_json_feed_and_link_headers(make_rig, kind: str) -> None:  # type: ignore[no-untyped-def]
    rig: Rig = await make_rig()
    hub, topic = rig.hub.url, f"{rig.feed_url}?canonical"
    if kind == "atom-link":
        body = ATOM.format(links=f'<link rel="hub" href="{hub}"/><link rel="self" href="{topic}"/>')
        rig.feeds.set("/feed.xml", body, content_type="application/atom+xml")
    elif kind == "json-hubs":
        feed = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "pub",
            "feed_url": topic,
            "hubs": [{"type": "rssCloud", "url": "http://127.0.0.1:9/rpc"}, {"type": "WebSub", "url": hub}],
            "items": [{"id": "a1", "title": "a1", "content_text": "x"}],
        }
        rig.feeds.set("/feed.xml", json.dumps(feed), content_type="application/feed+json")
    else:  # the document names another hub: the Link headers win
        body = ATOM.format(links='<link rel="hub" href="http://127.0.0.1:9/other-hub"/>')
        link = f'<{hub}>; rel="hub", <{topic}>; rel="self"'
        rig.feeds.set("/feed.xml", body, content_type="application/atom+xml", headers={"Link": link})
    await rig.work()
    [request] = rig.hub.requests
    assert request["hub.topic"] == topic
    push = await rig.push()
    assert (push.status, push.hub, push.topic) == (PushStatus.ACTIVE, hub, topic)


async def test_no_hub_no_subscription_and_push_off_by_default_on_loopback(make_rig, redis) -> None:  # type: ignore[no-untyped-def]
    rig: Rig = await make_rig()
    rig.publish(["a1"], hub=None)
    await rig.work()
    assert rig.hub.requests == [] and (await rig.state()).push is None
    loopback = rig.variant(push={})
    assert not loopback.push_enabled  # base_url on 127.0.0.1: no hub could call it back
    rig.publish(["a1"])
    rig.clock.advance(61)
    await rig.work(loopback)
    assert rig.hub.requests == [] and (await rig.state()).push is None


async def test_verification_refused_for_what_we_did_not_ask(rig: Rig) -> None:
    callback = callback_of(rig)
    topic = rig.feed_url
    unknown = callback.rsplit("/", 1)[0] + "/" + "x" * 32
    assert (await rig.hub.verify_as(unknown, mode="subscribe", topic=topic, challenge="c"))[0] == 404
    assert (await rig.hub.verify_as(callback, mode="subscribe", topic=topic + "?other", challenge="c"))[0] == 404
    assert (await rig.hub.verify_as(callback, mode="unsubscribe", topic=topic, challenge="c"))[0] == 404
    assert (await rig.hub.verify_as(callback, mode="subscribe", topic=topic))[0] == 400  # no challenge
    assert (await rig.hub.verify_as(callback + "/../x", mode="subscribe", topic=topic, challenge="c"))[0] == 404
    # Our own renewal is confirmed: the challenge echoed, the lease restarted from the clock.
    rig.clock.advance(100)
    status, body = await rig.hub.verify_as(
        callback, mode="subscribe", topic=topic, challenge="c-1", lease_seconds="500"
    )
    assert (status, body) == (200, "c-1")
    push = await rig.push()
    assert push.lease_end == rig.clock() + timedelta(seconds=500) and push.active_since == rig.clock() - timedelta(
        seconds=100
    )


async def test_denial_is_recorded_and_retried_later(rig: Rig) -> None:
    assert await rig.hub.deny(rig.feed_url, callback_of(rig), reason="private feed") == 200
    push = await rig.push()
    assert push.status is PushStatus.DENIED and push.error == "denied by the hub: private feed"
    assert push.retry_at == rig.clock() + timedelta(seconds=rig.settings.push.retry_max_seconds)
    rig.clock.advance(rig.settings.push.retry_max_seconds)
    await rig.work()
    assert len(rig.hub.requests) == 2 and (await rig.push()).status is PushStatus.ACTIVE
    assert callback_of(rig) != rig.hub.requests[0]["hub.callback"]  # a fresh attempt: a new callback


async def test_hub_refusing_the_request_fails_then_retries_with_backoff(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig: Rig = await make_rig()
    rig.hub.answer = 429
    await rig.work()
    push = await rig.push()
    assert push.status is PushStatus.FAILED and push.error == "HTTP 429: no, thank you" and push.failures == 1
    retry = rig.settings.push.retry_seconds
    assert push.retry_at == rig.clock() + timedelta(seconds=retry)
    rig.clock.advance(retry)
    await rig.work()
    assert (await rig.push()).failures == 2 and len(rig.hub.requests) == 2
    assert (await rig.push()).retry_at == rig.clock() + timedelta(seconds=2 * retry)
    rig.hub.answer = 202
    rig.clock.advance(2 * retry)
    await rig.work()
    push = await rig.push()
    assert push.status is PushStatus.ACTIVE and push.failures == 0 and push.error is None


async def test_a_hub_that_never_verifies_is_given_up_on(make_rig) -> None:  # type: ignore[no-untyped-def]
    rig: Rig = await make_rig()
    rig.hub.verify = "none"
    await rig.work()
    assert (await rig.push()).status is PushStatus.PENDING
    rig.clock.advance(rig.settings.push.verify_within_seconds)
    await rig.work()
    push = await rig.push()
    assert push.status is PushStatus.FAILED and "did not verify" in (push.error or "")


# -- deliveries ----------------------------------------------------------------------------------


async def test_signed_fat_ping_is_ingested_and_forged_ones_ignored(rig: Rig) -> None:
    topic = rig.feed_url
    assert await rig.titles() == ["a1"]
    fat = rss(["a2", "a1"]).encode()
    assert await rig.hub.publish(topic, fat) == [202]
    await rig.work()
    assert await rig.titles() == ["a1", "a2"]
    push = await rig.push()
    assert push.deliveries == 1 and push.last_delivery == rig.clock() and push.bad_signatures == 0

    for forged in ({"forge": True}, {"signed": False}, {"algorithm": "md5"}):
        assert await rig.hub.publish(topic, rss(["evil"]).encode(), **forged) == [202]  # acknowledged, spec 8
    await rig.work()
    assert await rig.titles() == ["a1", "a2"]
    push = await rig.push()
    assert push.bad_signatures == 3 and push.deliveries == 1 and push.last_bad_signature == rig.clock()
    assert await rig.redis.llen(keys.push_inbox("src")) == 0

    for algorithm in ("sha1", "sha384", "sha512"):  # every algorithm the spec lists is checked
        assert await rig.hub.publish(topic, rss([f"a-{algorithm}"]).encode(), algorithm=algorithm) == [202]
    await rig.work()
    assert await rig.titles() == ["a-sha1", "a-sha384", "a-sha512", "a1", "a2"]


async def test_delivery_limits_and_gone_callbacks(rig: Rig) -> None:
    sub = rig.hub.subscriber(rig.feed_url)
    huge = b"<rss>" + b"x" * rig.settings.push.max_delivery_bytes
    assert await rig.hub.deliver(sub, huge) == 413
    response = await rig.client.post("/push/" + "y" * 32, data=b"<rss/>")
    assert response.status == 410  # no such subscription: the hub should drop it
    assert (await rig.push()).deliveries == 0


async def test_thin_pings_coalesce_into_one_poll(rig: Rig) -> None:
    polls = len(rig.feeds.seen("/feed.xml"))
    rig.publish(["a2", "a1"])
    for _ in range(3):
        assert await rig.hub.publish(rig.feed_url) == [202]  # empty body: "the feed changed"
    rig.clock.advance(1)  # past the coalescing window, long before the next scheduled poll
    await rig.work()
    assert len(rig.feeds.seen("/feed.xml")) == polls + 1
    assert await rig.titles() == ["a1", "a2"]
    push = await rig.push()
    assert push.deliveries == 3 and push.last_thin_ping is not None and push.misses == 0  # announced, not missed


async def test_fat_ping_burst_is_one_ingest(rig: Rig) -> None:
    for n in range(2, 7):
        assert await rig.hub.publish(rig.feed_url, rss([f"a{n}"]).encode()) == [202]
    assert await rig.redis.llen(keys.push_inbox("src")) == 5
    queued = [job.decode() for job in await rig.redis.zrange(keys.ARQ_QUEUE, 0, -1)]
    assert len([job for job in queued if job.startswith("push:ingest:src:")]) == 1  # one job for the window
    await rig.work()
    assert await rig.titles() == ["a1", "a2", "a3", "a4", "a5", "a6"]
    assert (await rig.push()).deliveries == 5


# -- scheduling: backup poll, misses, renewal, expiry, removal -----------------------------------


async def test_active_push_makes_the_pull_a_backup_and_a_miss_falls_back(make_rig) -> None:  # type: ignore[no-untyped-def]
    backup = 600  # shorter than the lease, so no renewal comes between the pulls
    rig: Rig = await make_rig(backup_poll_seconds=backup)
    await rig.work()
    rig.clock.advance(61)  # the poll scheduled before the subscription was verified
    await rig.work()
    state = await rig.state()
    assert state.next_poll_reason == "push-backup" and state.next_poll == rig.clock() + timedelta(seconds=backup)

    # push delivered a2, so the next backup pull finds nothing new: no miss.
    await rig.hub.publish(rig.feed_url, rss(["a2", "a1"]).encode())
    await rig.work()
    rig.publish(["a2", "a1"])
    rig.clock.advance(backup)
    await rig.work()
    assert (await rig.push()).misses == 0 and (await rig.state()).next_poll_reason == "push-backup"

    # The publisher posts a3 and the hub never says so: the pull finds it, a miss.
    rig.publish(["a3", "a2", "a1"])
    rig.clock.advance(backup)
    await rig.work()
    push = await rig.push()
    assert push.status is PushStatus.FALLBACK and push.misses == 1 and push.last_miss == rig.clock()
    assert push.fallback_reason == "a pull found 1 new article(s) that push had not delivered"
    assert push.fallback_until == rig.clock() + timedelta(seconds=rig.settings.push.fallback_seconds)
    state = await rig.state()
    assert state.next_poll_reason == "interval" and state.next_poll == rig.clock() + timedelta(seconds=60)
    assert await rig.titles() == ["a1", "a2", "a3"]

    # After the fallback period: a fresh subscription, and the pull is a backup again.
    requests = len(rig.hub.requests)
    rig.clock.advance(rig.settings.push.fallback_seconds)
    await rig.work()
    assert len(rig.hub.requests) == requests + 1 and callback_of(rig) != rig.hub.requests[0]["hub.callback"]
    push = await rig.push()
    assert push.status is PushStatus.ACTIVE and push.misses == 1 and push.active_since == rig.clock()
    rig.clock.advance(60)
    await rig.work()
    assert (await rig.state()).next_poll_reason == "push-backup"


async def test_renewal_at_80_percent_of_the_lease(rig: Rig) -> None:
    first = rig.hub.requests[0]
    rig.clock.advance(LEASE * 0.8 - 1)
    await rig.work()
    assert len(rig.hub.requests) == 1  # not yet
    rig.clock.advance(1)
    await rig.work()
    renewal = rig.hub.requests[1]
    assert {k: renewal[k] for k in first} == first  # same callback, topic, lease asked and secret
    push = await rig.push()
    assert push.status is PushStatus.ACTIVE and push.lease_end == rig.clock() + timedelta(seconds=LEASE)
    assert push.verified_at == rig.clock() and push.active_since == rig.clock() - timedelta(seconds=LEASE * 0.8)


async def test_a_lease_that_ends_unrenewed_means_polling_and_a_fresh_subscription(rig: Rig) -> None:
    rig.clock.advance(61)
    await rig.work()
    assert (await rig.state()).next_poll_reason == "push-backup"
    rig.hub.verify = "none"  # the hub stops answering
    rig.clock.advance(LEASE * 0.8)
    await rig.work()  # renewal asked, never verified
    rig.clock.advance(rig.settings.push.verify_within_seconds)
    await rig.work()  # asked again
    assert len(rig.hub.requests) == 3 and (await rig.push()).status is PushStatus.ACTIVE
    polls = len(rig.feeds.seen("/feed.xml"))
    rig.hub.verify = "async"
    rig.clock.advance(LEASE)
    await rig.work()  # subscribes afresh and makes the source due now
    await rig.work()
    assert len(rig.feeds.seen("/feed.xml")) == polls + 1  # polled at once, not at the backup time
    push = await rig.push()
    assert push.status is PushStatus.ACTIVE and push.lease_end == rig.clock() + timedelta(seconds=LEASE)
    assert callback_of(rig) != rig.hub.requests[0]["hub.callback"]


async def test_removed_source_is_unsubscribed(rig: Rig) -> None:
    callback = callback_of(rig)
    assert (rig.feed_url, callback) in rig.hub.subscriptions
    await rig.work(rig.variant(sources=[], feeds=[]))  # the worker starts with the new config: the source left
    unsubscribe = rig.hub.requests[-1]
    assert unsubscribe["hub.mode"] == "unsubscribe" and unsubscribe["hub.callback"] == callback
    assert "hub.secret" not in unsubscribe
    assert rig.hub.verifications[-1].mode == "unsubscribe" and rig.hub.verifications[-1].echoed
    assert (rig.feed_url, callback) not in rig.hub.subscriptions
    assert await rig.store.sources.push.get("src") is None
    assert await rig.redis.zcard(keys.PUSH_DUE) == 0
    sub_body = rss(["late"]).encode()
    response = await rig.client.post(callback.removeprefix(rig.settings.server.base_url), data=sub_body)
    assert response.status == 410  # a late delivery tells the hub to drop it


async def test_leave_is_what_a_runtime_removal_calls(rig: Rig) -> None:
    assert await rig.store.sources.push.leave("src", rig.clock())
    push = await rig.push()
    assert push.status is PushStatus.UNSUBSCRIBING and push.requested_at is None
    assert not await rig.store.sources.push.leave("nosuch", rig.clock())
