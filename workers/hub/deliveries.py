"""WebSub hub, the worker side: verification of intent, fan-out of feed changes, deliveries.

Three arq jobs (thin wrappers in ``workers/tasks.py``):

- ``websub_verify(request_id)``: denial GET for a feed we do not have (spec 5.2), else the
  verification GET with a fresh ``hub.challenge`` (spec 5.3); only a 2xx echoing it is applied.
- ``websub_notify(feed, change, article_ids)``: after ingest moved a feed, render the changed
  items once per format subscribers use, park the bytes in Redis, queue one delivery each.
- ``websub_deliver(subscription_id, feed, change)``: POST the bytes (spec 7) with Link and
  ``X-Hub-Signature``; 2xx done, 410 unsubscribes, anything else retries with backoff.

Every outgoing request goes through the worker's session from ``workers.fetch.client.new_session`` (so
the SSRF guard there applies to callbacks too) and never follows redirects (spec 5.3.1, 7).
A callback the guard refuses is logged as refused, not failed. Verification GETs take a slot of
the callback host's budget (:class:`~workers.fetch.host_budget.HostBudget`, the one polls of
that host share): a host over it gets its verification later, a bounded number of times.
Callback URLs are capability URLs and secrets are secrets: logs name subscriptions by id and host.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

import aiohttp
from redis.asyncio import Redis

from service import jobs
from service.config import Settings
from service.feed_filter import feed_filter_matches
from service.feeds.merge import FORMATS, build_merged_feed
from service.feeds.render import render
from service.hub.protocol import (
    HubRequest,
    Subscription,
    callback_host,
    challenge_echoed,
    clamp_lease,
    denial_params,
    hub_url,
    link_header,
    signature,
    topic_denial,
    verification_params,
    with_query,
)
from service.hub.subscriptions import HubStore, SubscriptionLimit
from service.store.articles import Store
from workers.fetch import netguard
from workers.resources import Resources

log = logging.getLogger(__name__)

MAX_CHALLENGE_BODY = 4096  # a challenge is 43 characters; read no further than this
MAX_VERIFY_DEFERRALS = 10  # a callback host over its budget this many times in a row: given up


class VerifyStatus(StrEnum):
    VERIFIED = "verified"
    STALE = "stale"  # verified, but a later request for this topic + callback was applied first
    FAILED = "failed"
    DENIED = "denied"  # an unknown feed, or a cap reached: the callback was told (spec 5.2)
    REFUSED = "refused"  # the SSRF guard refused the callback's address: no request was made
    DEFERRED = "deferred"  # the callback host is over its budget: verification queued for later
    GONE = "gone"  # the parked request expired before its job ran


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"  # worth retrying
    GONE = "gone"  # the callback answered 410: subscription removed
    SKIPPED = "skipped"  # lapsed, unsubscribed or renewed for another topic meanwhile


def hub_store(settings: Settings, redis: Redis) -> HubStore:
    config = settings.websub
    return HubStore(
        redis,
        config.max_lease_seconds,
        max_per_feed=config.max_subscriptions_per_feed,
        max_per_host=config.max_subscriptions_per_callback_host,
    )


class Reply(NamedTuple):
    status: int  # 0 when no answer came
    body: bytes = b""
    refused: bool = False  # the SSRF guard refused the address: nothing was sent


# -- verification of intent ------------------------------------------------------------------


async def verify(res: Resources, request_id: str, deferrals: int = 0) -> VerifyStatus:
    store = hub_store(res.settings, res.redis)
    request = await store.parked(request_id)
    if request is None:
        return VerifyStatus.GONE
    host = callback_host(request.callback)
    hosts = res.host_budget()
    _, wait, slot = await hosts.try_acquire(host)  # no waiting in a job: a busy host means later
    if slot is None:
        if deferrals < MAX_VERIFY_DEFERRALS:
            wait = max(wait, 1.0)
            await jobs.enqueue(
                res.redis,
                "websub_verify",
                request_id,
                deferrals + 1,
                job_id=f"websub:verify:{request_id}:{deferrals + 1}",
                defer_seconds=wait,
            )
            log.info("hub: verification of %s deferred %.0fs: %s over its budget", request_id, wait, host)
            return VerifyStatus.DEFERRED  # still parked for the deferred job
        await store.unpark(request_id)
        log.warning("hub: gave up verifying %s: %s over its budget %d times", request_id, host, deferrals)
        return VerifyStatus.FAILED
    try:
        reason = topic_denial(res.settings, request.topic) if request.mode == "subscribe" else None
        reason = reason or await store.limit_reached(request, res.clock())
        if reason is not None:
            return await _deny(res, request, reason)
        return await _verify_intent(res, store, request)
    finally:
        await hosts.release(slot)
        await store.unpark(request_id)


async def _deny(res: Resources, request: HubRequest, reason: str) -> VerifyStatus:
    reply = await _get(res, with_query(request.callback, denial_params(request, reason)))
    if reply.refused:
        return VerifyStatus.REFUSED
    log.info("hub: denied subscription %s: %s", request.subscription_id, reason)
    return VerifyStatus.DENIED


async def _verify_intent(res: Resources, store: HubStore, request: HubRequest) -> VerifyStatus:
    challenge = secrets.token_urlsafe(32)
    lease = clamp_lease(request.lease_seconds, res.settings.websub)
    now = res.clock()  # the lease runs from the verification request (spec 5.3)
    reply = await _get(res, with_query(request.callback, verification_params(request, challenge, lease)))
    if reply.refused:
        return VerifyStatus.REFUSED
    if not challenge_echoed(reply.status, reply.body, challenge):
        log.info(
            "hub: %s of %s at %s not verified (HTTP %s)",
            request.mode,
            request.subscription_id,
            callback_host(request.callback),
            reply.status or "error",
        )
        return VerifyStatus.FAILED
    try:
        applied = await store.apply(request, lease, now)
    except SubscriptionLimit as exc:  # another verification took the last place meanwhile
        log.info("hub: subscription %s not applied: %s", request.subscription_id, exc)
        return VerifyStatus.DENIED
    if applied is None:
        return VerifyStatus.STALE
    log.info(
        "hub: %s %s %s at %s%s",
        request.mode,
        request.subscription_id,
        request.topic.url,
        callback_host(request.callback),
        f" for {lease}s" if request.mode == "subscribe" else "",
    )
    return VerifyStatus.VERIFIED


async def _get(res: Resources, url: str) -> Reply:
    """The status and first bytes of the body of a GET to a callback (never raises)."""
    timeout = aiohttp.ClientTimeout(total=res.settings.websub.verify_timeout_seconds)
    try:
        async with res.session.get(url, allow_redirects=False, timeout=timeout, headers={"Accept": "*/*"}) as response:
            return Reply(response.status, await _read_capped(response, MAX_CHALLENGE_BODY))
    except Exception as exc:  # a failed request, never a dead job
        return _failed("GET", url, exc)


def _failed(method: str, url: str, exc: Exception) -> Reply:
    if netguard.is_blocked_error(exc):
        log.warning("hub: callback %s to %s refused: %s", method, callback_host(url), netguard.BLOCKED_MARK)
        return Reply(0, refused=True)
    if isinstance(exc, (TimeoutError, aiohttp.ClientError, OSError, ValueError)):
        log.info("hub: callback %s to %s failed: %s", method, callback_host(url), type(exc).__name__)
    else:
        log.warning("hub: callback %s to %s failed: %s", method, callback_host(url), type(exc).__name__)
    return Reply(0)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(limit):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]


# -- fan-out of a feed change ----------------------------------------------------------------


def change_id(feed_name: str, version: int, article_ids: Iterable[str]) -> str:
    """Names one change of one feed; two drains moving the feed at once get different names."""
    digest = hashlib.sha256("\n".join([feed_name, str(version), *sorted(article_ids)]).encode())
    return f"{version}-{digest.hexdigest()[:16]}"


async def notify_changes(redis: Redis, store: Store, now: datetime, changed: Mapping[str, Iterable[str]]) -> int:
    """Queue one ``websub_notify`` per changed feed that has live subscribers (called by ingest)."""
    hub = hub_store(store.settings, redis)
    queued = 0
    for feed_name, article_ids in changed.items():
        ids = sorted(set(article_ids))
        if not ids or await hub.live_count(feed_name, now) == 0:
            continue
        change = change_id(feed_name, await store.feed_version(feed_name), ids)
        if await jobs.enqueue(
            redis, "websub_notify", feed_name, change, ids, job_id=f"websub:notify:{feed_name}:{change}"
        ):
            queued += 1
    return queued


async def notify(res: Resources, feed_name: str, change: str, article_ids: list[str]) -> int:
    """Render the changed items per format in use, then queue a delivery per live subscription."""
    feed = res.settings.feed(feed_name)
    if feed is None:
        return 0
    store = hub_store(res.settings, res.redis)
    subscriptions = await store.live_subscriptions(feed_name, res.clock())
    if not subscriptions:
        return 0
    articles = [a for a in await res.store.articles(article_ids) if feed_filter_matches(feed, a)]
    if not articles:  # nothing a reader of this feed would see
        return 0
    merged = build_merged_feed(res.settings, feed, articles)
    for fmt in sorted({s.topic.fmt for s in subscriptions}):
        await store.save_payload(feed_name, change, fmt, render(merged, fmt))
    for subscription in subscriptions:
        await jobs.enqueue(
            res.redis,
            "websub_deliver",
            subscription.id,
            feed_name,
            change,
            job_id=f"websub:deliver:{subscription.id}:{feed_name}:{change}",
        )
    return len(subscriptions)


# -- delivery --------------------------------------------------------------------------------


async def deliver(res: Resources, subscription_id: str, feed_name: str, change: str) -> DeliveryStatus:
    store = hub_store(res.settings, res.redis)
    subscription = await store.subscription(subscription_id)
    if subscription is None or not subscription.live(res.clock()) or subscription.topic.feed != feed_name:
        return DeliveryStatus.SKIPPED
    body = await store.payload(feed_name, change, subscription.topic.fmt)
    if body is None:
        log.warning("hub: payload of %s change %s expired before delivery to %s", feed_name, change, subscription_id)
        return DeliveryStatus.SKIPPED
    status = await _post(res, subscription, body)
    if 200 <= status < 300:
        return DeliveryStatus.DELIVERED
    if status == 410:
        await store.remove(subscription)
        log.info(
            "hub: %s answered 410 Gone; subscription %s removed", callback_host(subscription.callback), subscription_id
        )
        return DeliveryStatus.GONE
    log.info(
        "hub: delivery of %s change %s to %s at %s failed (HTTP %s)",
        feed_name,
        change,
        subscription_id,
        callback_host(subscription.callback),
        status or "error",
    )
    return DeliveryStatus.FAILED


def delivery_headers(settings: Settings, subscription: Subscription, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": FORMATS[subscription.topic.fmt] + "; charset=utf-8",
        "Link": link_header(hub_url(settings), subscription.topic.url),
    }
    if subscription.secret:
        headers["X-Hub-Signature"] = signature(subscription.secret, body)
    return headers


async def _post(res: Resources, subscription: Subscription, body: bytes) -> int:
    headers = delivery_headers(res.settings, subscription, body)
    try:
        async with res.session.post(
            subscription.callback, data=body, headers=headers, allow_redirects=False
        ) as response:
            await response.content.read(MAX_CHALLENGE_BODY)  # the body is ignored (spec 7); drain a little
            return response.status
    except Exception as exc:  # a failed try, never a dead job
        return _failed("POST", subscription.callback, exc).status
