"""``/hub``: the WebSub hub endpoint (subscribe/unsubscribe) and its operator summary.

``POST /hub`` answers before any outgoing request (spec 5.1.2: the response must not depend on
verification): 400 with a plain-text reason for a request it refuses, else 202 and an arq job
``websub_verify`` does the verification of intent. ``GET /hub`` lists live subscriptions per feed.

Limits (docs/websub.md#limits), checked before anything is parked or queued: a token bucket per
client address, then one per callback host (429 with ``Retry-After``, shared by every web
process through Redis); a callback on an address known to be private is a 400 (unless ``[fetch]
allow_private_networks``); a new subscription past the feed's or the callback host's cap is a
403. So a flood costs a Redis call per request, never a verification GET.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import parse_qsl

from aiohttp import web

from service import jobs, keys
from service.hub.protocol import HubRequestError, callback_host, hub_url, parse_hub_request, private_callback
from service.hub.subscriptions import HubStore
from service.store import ratelimit
from service.web.appkeys import CLOCK, REDIS, SETTINGS
from service.web.bound_routes import BoundRoutes
from service.web.feed_views import guarded, json_response

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024


def plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """Spec 5.1.2: errors carry a plain-text description for the subscriber's developer."""
    return web.Response(status=status, text=text + "\n", content_type="text/plain", charset="utf-8", headers=headers)


def hub_store(app: web.Application) -> HubStore:
    config = app[SETTINGS].websub
    return HubStore(
        app[REDIS],
        config.max_lease_seconds,
        max_per_feed=config.max_subscriptions_per_feed,
        max_per_host=config.max_subscriptions_per_callback_host,
    )


async def _rate_limited(app: web.Application, bucket: str, per_minute: int, who: str) -> web.Response | None:
    decision = await ratelimit.take_from(app[REDIS], bucket, per_minute)
    if decision.allowed:
        return None
    return plain(
        429,
        f"too many hub requests {who}: at most {per_minute} per minute; retry in {decision.retry_after_seconds}s",
        headers={"Retry-After": str(decision.retry_after_seconds)},
    )


async def hub_post(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    client = request.remote or "?"
    limited = await _rate_limited(
        request.app, keys.hub_rate_client(client), settings.websub.client_requests_per_minute, f"from {client}"
    )
    if limited is not None:
        return limited
    if request.content_type != FORM:
        return plain(400, f"Content-Type must be {FORM}")
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        return plain(413, f"request body larger than {MAX_FORM_BYTES} bytes")
    body = await read_capped(request, MAX_FORM_BYTES)
    if body is None:
        return plain(413, f"request body larger than {MAX_FORM_BYTES} bytes")
    try:
        form = _decode_form(body)
    except ValueError as exc:
        return plain(400, f"unreadable form: {exc}")
    store = hub_store(request.app)
    request_id = uuid.uuid4().hex
    try:
        hub_request = parse_hub_request(form, settings, request_id=request_id, seq=0, received=request.app[CLOCK]())
    except HubRequestError as exc:
        return plain(400, str(exc))
    if not settings.fetch.allow_private_networks and (private := private_callback(hub_request.callback)):
        log.info("hub: refused %s request %s: %s", hub_request.mode, request_id, private)
        return plain(400, private)
    host = callback_host(hub_request.callback)
    limited = await _rate_limited(
        request.app,
        keys.hub_rate_callback_host(host),
        settings.websub.callback_host_requests_per_minute,
        f"for callbacks on {host}",
    )
    if limited is not None:
        return limited
    if (reason := await store.limit_reached(hub_request, request.app[CLOCK]())) is not None:
        return plain(403, reason)
    hub_request = hub_request.model_copy(update={"seq": await store.next_seq()})
    await store.park(hub_request)
    await jobs.enqueue(request.app[REDIS], "websub_verify", request_id, job_id=f"websub:verify:{request_id}")
    log.info(
        "hub: %s request %s for %s (subscription %s) accepted for verification",
        hub_request.mode,
        request_id,
        hub_request.topic.url,
        hub_request.subscription_id,
    )
    return plain(202, "Accepted: intent will be verified at the callback")


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` (chunked bodies declare no length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_form(body: bytes) -> dict[str, str]:
    """First value of each field, UTF-8 (spec 5.1); non-UTF-8 bytes are refused."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    form: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=64):
        form.setdefault(name, value)
    return form


async def hub_get(request: web.Request) -> web.Response:
    """Operators: live subscriptions per merged feed (no callbacks, no secrets)."""
    settings = request.app[SETTINGS]
    counts = await hub_store(request.app).counts((f.name for f in settings.feeds), request.app[CLOCK]())
    return json_response(
        {
            "hub": hub_url(settings),
            "feeds": [{"name": name, "subscriptions": count} for name, count in counts.items()],
            "subscriptions": sum(counts.values()),
        }
    )


def add_routes(routes: BoundRoutes) -> None:
    routes.add_post("/hub", guarded(hub_post))
    routes.add_get("/hub", guarded(hub_get))
