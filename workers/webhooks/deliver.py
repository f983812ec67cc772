"""Webhooks of API keys, the worker side: POST change records to each webhook in log order.

``webhook_deliver(id)`` (a thin job in ``workers/tasks.py``, one at a time per webhook: the job
id and a lock) reads the records after the webhook's position, as its key's scope and feed see
them, and POSTs them in batches of ``[api] webhook_batch``:

- body ``{"webhook", "seq", "changes": [ChangeRecord...], "next_cursor"}``; ``seq`` goes up by one
  per delivery, so a receiver sees a gap if one is ever lost;
- ``Tributary-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` (the time is
  signed too, so an old delivery cannot be replayed as new), ``Tributary-Sequence``,
  ``Tributary-Webhook-Id``;
- a 2xx moves the position on; anything else leaves it, so the retry (backoff
  ``[api] webhook_retry_*``) carries the same seq and at least the same records; after
  ``webhook_attempts`` tries the webhook pauses for ``webhook_retry_max_seconds``.

Every try is logged (``tributary webhooks log``). Requests go through the worker's session from
``workers.fetch.client.new_session``, so the SSRF guard applies to callbacks, never follow
redirects, and read at most a few bytes of the answer. Logs name webhooks by id and host only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

import aiohttp

from service import jobs
from service.api.cursors import CursorSigner
from service.api.reads import Reader
from service.config import ApiConfig
from service.store.api_keys import ApiKeys, cursor_secret
from service.store.changelog import ChangeLog, Position
from service.store.webhooks import Delivery, Webhook, WebhookStore
from workers.fetch import netguard
from workers.resources import Resources

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 4096
MAX_BATCHES_PER_JOB = 20


class Outcome(StrEnum):
    DELIVERED = "delivered"  # everything pending went out
    IDLE = "idle"  # nothing to send
    FAILED = "failed"  # worth retrying
    PAUSED = "paused"
    BEHIND = "behind_retention"  # records it never got were removed: an operator replays it
    BUSY = "busy"  # another worker is delivering to it
    GONE = "gone"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def retry_delay(config: ApiConfig, attempt: int) -> float:
    """Backoff before try ``attempt + 1``: base, 2*base, 4*base ... capped."""
    return float(min(config.webhook_retry_max_seconds, config.webhook_retry_base_seconds * 2.0 ** max(0, attempt - 1)))


def host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


async def dispatch(res: Resources) -> int:
    """Queue a delivery for every webhook behind the log and not paused (cron, and after ingest)."""
    head = await ChangeLog(res.redis).head()
    now = res.clock()
    queued = 0
    for hook in await WebhookStore(res.redis).all():
        due = Position.parse(hook.position) < head and (hook.paused_until is None or hook.paused_until <= now)
        if due and await jobs.enqueue(res.redis, "webhook_deliver", hook.id, job_id=f"webhook:{hook.id}"):
            queued += 1
    return queued


async def deliver(res: Resources, webhook_id: str, attempt: int = 1) -> Outcome:
    hooks = WebhookStore(res.redis)
    hook = await hooks.get(webhook_id)
    if hook is None:
        return Outcome.GONE
    if hook.paused_until is not None and res.clock() < hook.paused_until:
        return Outcome.PAUSED
    token = secrets.token_hex(8)
    if not await hooks.lock(
        webhook_id, token, int(res.settings.api.webhook_timeout_seconds * MAX_BATCHES_PER_JOB) + 60
    ):
        return Outcome.BUSY
    try:
        outcome = Outcome.IDLE
        for _ in range(MAX_BATCHES_PER_JOB):
            step, more = await _deliver_batch(res, hooks, hook, attempt)
            if step is not Outcome.DELIVERED:
                return outcome if step is Outcome.IDLE else step
            outcome = step
            refreshed = await hooks.get(webhook_id)
            if refreshed is None or not more:
                return outcome
            hook = refreshed
        return outcome
    finally:
        await hooks.unlock(webhook_id, token)


async def _deliver_batch(res: Resources, hooks: WebhookStore, hook: Webhook, attempt: int) -> tuple[Outcome, bool]:
    key = await ApiKeys(res.redis).get(hook.key)
    if key is None:
        await hooks.remove(hook.id)
        return Outcome.GONE, False
    reader = Reader(res.store, CursorSigner(await cursor_secret(res.redis, res.settings.api.cursor_secret)))
    position = Position.parse(hook.position)
    now = res.clock()
    if position < await reader.log.horizon():
        await hooks.log(hook.id, Delivery(seq=hook.seq, at=now, attempt=attempt, outcome="behind_retention"))
        await hooks.update(hook.id, hook.position, paused_until=None, failures=0)
        log.warning("webhook %s fell behind the change log's retention; replay it from a new position", hook.id)
        return Outcome.BEHIND, False
    read = await reader.changes(position, reader.view(key.feeds, hook.feed), res.settings.api.webhook_batch)
    if not read.page.changes:
        if read.last != position:  # only records outside its view: move on without a delivery
            await hooks.update(hook.id, hook.position, position=str(read.last))
        return Outcome.IDLE, False
    seq = hook.seq + 1
    body = json.dumps(
        {
            "webhook": hook.id,
            "seq": seq,
            "changes": [json.loads(r.model_dump_json()) for r in read.page.changes],
            "next_cursor": read.page.next_cursor,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    status, error = await _post(res, hook, seq, body, int(now.timestamp()))
    record = Delivery(
        seq=seq,
        at=now,
        attempt=attempt,
        outcome="delivered" if 200 <= status < 300 else "failed",
        status=status or None,
        error=error,
        records=len(read.page.changes),
        first=read.page.changes[0].cursor,
        last=read.page.next_cursor,
    )
    await hooks.log(hook.id, record)
    if record.outcome == "delivered":
        await hooks.update(hook.id, hook.position, position=str(read.last), seq=seq, failures=0)
        return Outcome.DELIVERED, read.page.more
    await hooks.update(hook.id, None, failures=hook.failures + 1)
    log.info("webhook %s at %s: delivery %d failed (%s)", hook.id, host_of(hook.url), seq, error or status)
    return Outcome.FAILED, False


async def pause(res: Resources, webhook_id: str) -> None:
    """After the last try: rest for ``webhook_retry_max_seconds``, then the cron tries again."""
    until = res.clock() + timedelta(seconds=res.settings.api.webhook_retry_max_seconds)
    await WebhookStore(res.redis).update(webhook_id, None, paused_until=until, failures=0)


async def _post(res: Resources, hook: Webhook, seq: int, body: bytes, timestamp: int) -> tuple[int, str | None]:
    headers = {
        "Content-Type": "application/json",
        "Tributary-Signature": signature(hook.secret, timestamp, body),
        "Tributary-Sequence": str(seq),
        "Tributary-Webhook-Id": hook.id,
    }
    timeout = aiohttp.ClientTimeout(total=res.settings.api.webhook_timeout_seconds)
    try:
        async with res.session.post(
            hook.url, data=body, headers=headers, allow_redirects=False, timeout=timeout
        ) as response:
            await response.content.read(MAX_ANSWER_BYTES)
            return response.status, None if response.status < 300 else f"HTTP {response.status}"
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        return 0, _kind(exc)
    except Exception as exc:  # e.g. the SSRF guard refusing the address: a failed try, never a dead job
        return 0, _kind(exc)


def _kind(exc: BaseException) -> str:
    if netguard.is_blocked_error(exc):
        return "blocked: the address is not public (SSRF guard)"
    return type(exc).__name__
