"""Push ingest, the worker side of a subscription: subscribe, renew, unsubscribe, give up.

``push_look(source_id)`` brings one source's subscription to where
:func:`service.push.lifecycle.plan` says it should be; the ``push_maintain`` cron hands out the
sources whose look is due (``push:due``), and a poll that discovers a new hub asks for one at
once. Each change is recorded before the request that needs it goes out, because a hub may
verify our intent (a GET to ``/push/{id}``, answered by the web side) before it answers the
request. Requests go through the workers' session, so the SSRF guard applies to hubs too, and
never follow redirects (the form carries the secret). Logs name the source and the hub, never
the callback id or the secret.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import aiohttp

from service.models import PushSubscription
from service.push import lifecycle
from service.push.lifecycle import Action
from service.push.subscriber_protocol import callback_url, new_callback_id, new_secret, request_form
from workers.poll.pipeline import push_policy
from workers.resources import Resources

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 2048
CLAIM_LEASE_SECONDS = 300
"""A claimed look not done within this is handed out again (its worker died)."""


class Looked(StrEnum):
    NONE = "none"  # no subscription (a stale due entry)
    WAITING = "waiting"
    REQUESTED = "requested"
    RENEWAL_REQUESTED = "renewal_requested"
    FAILED = "failed"
    GAVE_UP = "gave_up"
    UNSUBSCRIBING = "unsubscribing"
    FORGOTTEN = "forgotten"
    RACED = "raced"  # another writer changed it first: that writer's look stands


async def look(res: Resources, source_id: str) -> Looked:
    sources = res.store.sources
    push = await sources.push.get(source_id)
    if push is None:
        await sources.push.forget(source_id, None)  # drops a due entry left without a subscription
        return Looked.NONE
    now = res.clock()
    config = res.settings.push
    source = res.settings.source(source_id)
    wanted = source is not None and push_policy(res.settings, source) is not None
    wanted = wanted and not await sources.is_disabled(source_id)
    action = lifecycle.plan(push, now, wanted, config)
    if action is Action.LEAVE:
        await sources.push.leave(source_id, now)
        left = await sources.push.get(source_id)
        if left is None:
            return Looked.FORGOTTEN
        push, action = left, lifecycle.plan(left, now, wanted, config)
    match action:
        case Action.WAIT:
            await sources.push.apply(source_id, lifecycle.looked(push, config))
            return Looked.WAITING
        case Action.FORGET:
            await sources.push.forget(source_id, push.id)
            log.info("push: %s forgot its subscription at %s", source_id, push.hub)
            return Looked.FORGOTTEN
        case Action.GIVE_UP:
            await sources.push.apply(source_id, lifecycle.gave_up(push, now, config))
            log.warning("push: %s: the hub %s never verified the request; retrying later", source_id, push.hub)
            return Looked.GAVE_UP
        case Action.UNSUBSCRIBE:
            return await _unsubscribe(res, source_id, push)
        case Action.RENEW if push.id and push.secret:
            return await _renew(res, source_id, push)
        case Action.RESUBSCRIBE_EXPIRED:
            await sources.poll_soon(source_id, now)  # the pull was a slow backup: poll as usual again
            log.warning("push: %s: the lease at %s ended unrenewed; subscribing afresh", source_id, push.hub)
    return await _subscribe(res, source_id, push)


async def _subscribe(res: Resources, source_id: str, push: PushSubscription) -> Looked:
    now, config = res.clock(), res.settings.push
    callback_id, secret = new_callback_id(), new_secret()
    change = lifecycle.requested(push, now, config, callback_id=callback_id, secret=secret)
    if not await res.store.sources.push.apply(source_id, change, link=callback_id):
        return Looked.RACED
    form = request_form(
        "subscribe",
        push.topic,
        callback_url(res.settings.server.base_url, callback_id),
        lease_seconds=config.lease_seconds,
        secret=secret,
    )
    return await _requested(res, source_id, lifecycle.applied(push, change), form, Looked.REQUESTED)


async def _renew(res: Resources, source_id: str, push: PushSubscription) -> Looked:
    now, config = res.clock(), res.settings.push
    change = lifecycle.renewal_requested(push, now, config)
    if not push.id or not await res.store.sources.push.apply(source_id, change):
        return Looked.RACED
    form = request_form(
        "subscribe",
        push.topic,
        callback_url(res.settings.server.base_url, push.id),
        lease_seconds=config.lease_seconds,
        secret=push.secret,
    )
    return await _requested(res, source_id, lifecycle.applied(push, change), form, Looked.RENEWAL_REQUESTED)


async def _requested(
    res: Resources, source_id: str, sent: PushSubscription | None, form: dict[str, str], ok: Looked
) -> Looked:
    if sent is None:  # pragma: no cover - a recorded request always leaves a subscription
        return Looked.RACED
    error = await post_to_hub(res, sent.hub, form)
    if error is None:
        log.info("push: %s asked %s to %s %s", source_id, sent.hub, form["hub.mode"], sent.topic)
        return ok
    await res.store.sources.push.apply(source_id, lifecycle.request_failed(sent, error, res.clock(), res.settings.push))
    log.warning("push: %s: the hub %s refused to subscribe: %s", source_id, sent.hub, error)
    return Looked.FAILED


async def _unsubscribe(res: Resources, source_id: str, push: PushSubscription) -> Looked:
    now, config = res.clock(), res.settings.push
    if not push.id or not await res.store.sources.push.apply(
        source_id, lifecycle.unsubscribe_requested(push, now, config)
    ):
        await res.store.sources.push.forget(source_id, push.id)
        return Looked.FORGOTTEN
    form = request_form("unsubscribe", push.topic, callback_url(res.settings.server.base_url, push.id))
    error = await post_to_hub(res, push.hub, form)
    if error is not None:  # forget now: its deliveries get 410 Gone, so the hub drops it anyway
        await res.store.sources.push.forget(source_id, push.id)
        log.info("push: %s: unsubscribing at %s failed (%s); forgotten", source_id, push.hub, error)
        return Looked.FORGOTTEN
    log.info("push: %s asked %s to unsubscribe", source_id, push.hub)
    return Looked.UNSUBSCRIBING


async def post_to_hub(res: Resources, hub: str, form: dict[str, str]) -> str | None:
    """POST the form (spec 5.1); None for a 2xx (202: verification follows; 204: done), else why not."""
    timeout = aiohttp.ClientTimeout(total=res.settings.push.request_timeout_seconds)
    try:
        async with res.session.post(
            hub, data=form, allow_redirects=False, timeout=timeout, headers={"Accept": "*/*"}
        ) as response:
            answer = await response.content.read(MAX_ANSWER_BYTES)
            if 200 <= response.status < 300:
                return None
            text = " ".join(answer.decode("utf-8", "replace").split())[:200]
            return f"HTTP {response.status}" + (f": {text}" if text else "")
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # e.g. the SSRF guard refusing the address: a failed request, never a dead job
        return f"refused: {type(exc).__name__}: {exc}"


async def claim_due(res: Resources, limit: int = 100) -> list[str]:
    """Sources whose subscription needs a look now (each handed to one worker)."""
    return await res.store.sources.push.claim_due(res.clock(), CLAIM_LEASE_SECONDS, limit)
