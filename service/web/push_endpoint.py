"""``/push/{id}``: the callback of our subscriptions to publishers' hubs (WebSub subscriber side).

- ``GET``: the hub verifying our intent (spec 5.3: echo ``hub.challenge`` only for a request we
  made and still want, else 404) or telling us it denied the subscription (5.2).
- ``POST``: a delivery (spec 7). The body is capped (``[push] max_delivery_bytes``, 413 past
  it); ``X-Hub-Signature`` is checked against the attempt's secret in constant time. A bad or
  missing signature is ignored as spec 8 says, counted on the subscription, and answered like
  any delivery (202), so a forger learns nothing. A fat ping (a body) waits in the source's
  inbox for one ``push_ingest`` job per coalescing window; a thin ping (no body) makes the
  source due for a poll. Either way the answer is immediate: the work is queued by job name.
  An id that is no current attempt gets 410 Gone, so the hub drops that subscription.

Logs name the source, never the callback id or the secret.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiohttp import web

from service import jobs
from service.config import Settings
from service.models import PushSubscription
from service.push import lifecycle
from service.push.subscriber_protocol import (
    CALLBACK_ID,
    Ping,
    SignatureCheck,
    check_signature,
    classify,
    confirms,
    read_intent,
)
from service.store.push_inbox import Delivery, PushInbox
from service.web.appkeys import CLOCK, REDIS, SETTINGS, STORE
from service.web.bound_routes import BoundRoutes
from service.web.feed_views import guarded, json_response
from service.web.hub_endpoint import plain, read_capped

log = logging.getLogger(__name__)

NOT_OURS = "no such subscription"


async def push_get(request: web.Request) -> web.Response:
    callback_id = request.match_info["id"]
    intent = read_intent(request.query)
    if intent is None:
        return plain(400, "expected hub.mode, hub.topic and hub.challenge (or hub.mode=denied)")
    if not CALLBACK_ID.match(callback_id):
        return plain(404, NOT_OURS)
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    sources = request.app[STORE].sources
    found = await sources.push.by_callback(callback_id)
    if found is None or not confirms(found[1], callback_id, intent):
        log.info("push: refused a %s verification for an attempt we do not hold", intent.mode)
        return plain(404, NOT_OURS)
    source_id, push = found
    if intent.mode == "unsubscribe":
        await sources.push.forget(source_id, callback_id)
        log.info("push: %s unsubscribed from %s", source_id, push.hub)
        return _challenge(intent.challenge)
    if intent.mode == "denied":
        await sources.push.apply(source_id, lifecycle.denied(push, intent.reason, now, settings.push))
        if push.live(now):  # it was the source's feed: poll as usual again, starting now
            await sources.poll_soon(source_id, now)
        log.warning("push: the hub %s denied %s: %s", push.hub, source_id, intent.reason or "no reason given")
        return plain(200, "noted")
    if not await sources.push.apply(source_id, lifecycle.verified(push, intent.lease_seconds, now, settings.push)):
        return plain(404, NOT_OURS)  # changed meanwhile (a new attempt, the source left)
    log.info("push: %s subscribed at %s for %ss", source_id, push.hub, intent.lease_seconds or "unstated")
    return _challenge(intent.challenge)


def _challenge(challenge: str | None) -> web.Response:
    return web.Response(status=200, text=challenge or "", content_type="text/plain")


async def push_post(request: web.Request) -> web.Response:
    callback_id = request.match_info["id"]
    settings = request.app[SETTINGS]
    found = await request.app[STORE].sources.push.by_callback(callback_id) if CALLBACK_ID.match(callback_id) else None
    if found is None:
        return plain(410, NOT_OURS)
    limit = settings.push.max_delivery_bytes
    if request.content_length is not None and request.content_length > limit:
        return plain(413, f"delivery larger than {limit} bytes")
    body = await read_capped(request, limit)
    if body is None:
        return plain(413, f"delivery larger than {limit} bytes")
    source_id, push = found
    now = request.app[CLOCK]()
    sources = request.app[STORE].sources
    check = check_signature(request.headers.get("X-Hub-Signature"), push.secret or "", body)
    if check is not SignatureCheck.VALID or not push.secret:
        await sources.push.apply(source_id, lifecycle.bad_signature(push, now))
        log.warning("push: ignored a delivery for %s with a %s signature", source_id, check.value)
        return plain(202, "accepted")
    ping = classify(body)
    await sources.push.apply(source_id, lifecycle.delivered(push, ping, now))
    if ping is Ping.FAT:
        await _queue_ingest(request, settings, source_id, body, now)
    else:
        await sources.poll_soon(source_id, now + timedelta(milliseconds=settings.push.coalesce_ms))
    return plain(202, "accepted")


async def _queue_ingest(request: web.Request, settings: Settings, source_id: str, body: bytes, now: datetime) -> None:
    """Into the inbox, then one job per source and coalescing window (deliveries within one
    window share it; the job runs when the window has closed and takes the whole inbox)."""
    redis = request.app[REDIS]
    content_type = request.headers.get("Content-Type", "application/octet-stream")
    await PushInbox(redis).put(source_id, Delivery(content_type, body))
    window_ms = settings.push.coalesce_ms
    if window_ms == 0:
        await jobs.enqueue(redis, "push_ingest", source_id)
        return
    now_ms = now.timestamp() * 1000  # the clock is wall time in production: windows line up across processes
    window = int(now_ms // window_ms)
    defer = ((window + 1) * window_ms - now_ms) / 1000
    await jobs.enqueue(redis, "push_ingest", source_id, job_id=f"push:ingest:{source_id}:{window}", defer_seconds=defer)


def subscription_view(push: PushSubscription, now: datetime) -> dict[str, object]:
    """What operators may see of a subscription: never its callback id or secret."""
    return {**push.model_dump(mode="json", exclude={"id"}), "live": push.live(now)}


async def push_list(request: web.Request) -> web.Response:
    """Operators: every source's subscription to its publisher's hub (``push`` null: none)."""
    settings, now = request.app[SETTINGS], request.app[CLOCK]()
    ids = [s.id for s in settings.sources]
    pushes = await request.app[STORE].sources.push.get_many(ids)
    listed = [
        {"source": sid, "push": subscription_view(p, now) if (p := pushes[sid]) is not None else None} for sid in ids
    ]
    return json_response(
        {
            "enabled": settings.push_enabled,
            "active": sum(1 for p in pushes.values() if p is not None and p.live(now)),
            "sources": listed,
        }
    )


def add_routes(routes: BoundRoutes) -> None:
    routes.add_get("/push", guarded(push_list))
    routes.add_get("/push/{id}", guarded(push_get))
    routes.add_post("/push/{id}", guarded(push_post))
