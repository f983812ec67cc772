"""Thin arq jobs: each takes its resources from ``ctx`` (filled in ``on_startup``) and ids as args."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from arq import Retry

from service import jobs
from service.config import SourceConfig
from service.hub.protocol import retry_delay
from service.store.changelog import ChangeLog
from service.store.dead_letters import DeadLetters
from service.store.source_registry import SourceRegistry
from service.store.source_state import Claim
from workers.hub import deliveries as websub
from workers.ingest import drain as ingest
from workers.pages import discover
from workers.poll import batch
from workers.poll.pipeline import PollReport, poll_source
from workers.push import ingest as push_ingested
from workers.push import subscribe as push_subscriptions
from workers.resources import Resources
from workers.webhooks import deliver as webhooks

log = logging.getLogger(__name__)

DISPATCH_BATCH = 500
"""Sources claimed per Lua call of the dispatcher."""
MAX_QUEUED_POLLS = 10_000
"""The dispatcher claims no more while the queue holds this many sources' polls (in jobs of
:data:`POLL_BATCH`): enough for every worker to find work before the next tick, few enough that
a claim begins well within its lease when the workers fall behind."""
POLL_BATCH = 25
"""Sources per ``poll_batch`` job: their beginnings, and the ends that come in together, share
Redis calls. Small enough that the due sources of one tick spread over several workers."""


async def poll(ctx: dict[str, Any], source_id: str, claim: str | None = None) -> dict[str, Any]:
    """Poll one source, then ingest what it queued. ``claim`` is the dispatcher's token.

    The admin page's "poll now" and a retried dead letter; the dispatcher sends batches.
    """
    res: Resources = ctx["resources"]
    (source,) = await _known_sources(ctx, [source_id])
    if source is None:
        return {"source_id": source_id, "status": "unknown_source"}
    in_flight = res.polls_in_flight()
    await in_flight.take(1)
    try:
        report = await poll_source(res, source, claim=claim)
    finally:
        in_flight.give()
    await _after_polls(ctx, [report])
    return {**asdict(report), "next_poll": report.next_poll.isoformat() if report.next_poll else None}


async def poll_batch(ctx: dict[str, Any], source_ids: list[str], claim: str | None = None) -> dict[str, int]:
    """Poll a batch of sources (:mod:`workers.poll.batch`), then ingest what they queued.

    Returns how many polls ended in each status (and ``new``/``updated`` articles).
    """
    res: Resources = ctx["resources"]
    sources = [source for source in await _known_sources(ctx, source_ids) if source is not None]
    reports = await batch.poll_batch(res, sources, claim)
    await _after_polls(ctx, reports)
    summary = Counter(str(report.status) for report in reports)
    if len(sources) < len(source_ids):
        summary["unknown_source"] = len(source_ids) - len(sources)
    summary["new"] = sum(report.new for report in reports)
    summary["updated"] = sum(report.updated for report in reports)
    return dict(summary)


async def _known_sources(ctx: dict[str, Any], source_ids: list[str]) -> list[SourceConfig | None]:
    """The sources of these ids (None for one unknown), asking for the run-time sources again
    when one is missing: it may have been added since this worker last looked."""
    settings = ctx["resources"].settings
    found = [settings.source(source_id) for source_id in source_ids]
    if None in found and "live" in ctx and await ctx["live"].refresh():
        found = [ctx["resources"].settings.source(source_id) for source_id in source_ids]
    return found


async def _after_polls(ctx: dict[str, Any], reports: list[PollReport]) -> None:
    """Ingest what the polls queued, look at newly named hubs, and say how each poll went."""
    res: Resources = ctx["resources"]
    if any(report.new or report.updated for report in reports):  # a 304 queued nothing; the drain cron covers leftovers
        await ingest_queued(res, ctx["consumer"])
    for report in reports:
        if report.push_discovered:  # subscribe now rather than at the next maintenance tick
            await jobs.enqueue(
                res.redis,
                "push_look",
                report.source_id,
                job_id=f"push:look:{report.source_id}:{res.clock().timestamp()}",
            )
        log.info(
            "polled %s: %s, %d new, %d updated, %d unchanged, next %s",
            report.source_id,
            report.status,
            report.new,
            report.updated,
            report.unchanged,
            report.next_poll,
        )


async def dispatch_due(ctx: dict[str, Any]) -> int:
    """Cron, once a second across all workers: turn due sources into ``poll_batch`` jobs.

    Claims :data:`DISPATCH_BATCH` at a time while a whole batch comes back and the queue holds
    fewer than :data:`MAX_QUEUED_POLLS`: how many polls a second the deployment runs is the
    workers' to bound, not one claim per tick's (which held every deployment to 500 polls/s).
    What is left due is claimed at the next tick.
    """
    res: Resources = ctx["resources"]
    redis, queue = ctx["redis"], ctx["queue_name"]
    dispatched = 0
    while await redis.zcard(queue) * POLL_BATCH < MAX_QUEUED_POLLS:
        claimed = await res.store.sources.claim_due(res.clock(), res.settings.worker.lease_seconds, DISPATCH_BATCH)
        for ids, claim in poll_batches(claimed):
            await redis.enqueue_job("poll_batch", ids, claim, _job_id=f"poll_batch:{claim}:{ids[0]}", _queue_name=queue)
        dispatched += len(claimed)
        if len(claimed) < DISPATCH_BATCH:
            break
    return dispatched


def poll_batches(claimed: Sequence[Claim], size: int = POLL_BATCH) -> list[tuple[list[str], str]]:
    """The claimed sources as ``poll_batch`` jobs' arguments: up to ``size`` source ids sharing
    one claim token, in the order claimed."""
    by_claim: dict[str, list[str]] = {}
    for source_id, claim in claimed:
        by_claim.setdefault(claim, []).append(source_id)
    return [
        (source_ids[start : start + size], claim)
        for claim, source_ids in by_claim.items()
        for start in range(0, len(source_ids), size)
    ]


async def drain_ingest(ctx: dict[str, Any]) -> int:
    """Cron: pick up queued articles whose poll job died before ingesting them."""
    report = await ingest_queued(ctx["resources"], ctx["consumer"])
    return report.entries


async def ingest_queued(res: Resources, consumer: str, *, own_pending: bool = False) -> ingest.IngestReport:
    """Store what polls queued, then tell the WebSub hub which feeds moved.

    A hub failure never fails ingest: the articles are stored either way. ``own_pending``: see
    :func:`workers.ingest.drain.drain`.
    """
    report = await ingest.drain(res.redis, res.store, res.clock, consumer, own_pending=own_pending)
    if report.outcomes:
        try:
            await webhooks.dispatch(res)
        except Exception:
            log.exception("could not queue webhook deliveries")
    if report.changed:
        try:
            await websub.notify_changes(res.redis, res.store, res.clock(), report.changed)
        except Exception:
            log.exception("could not queue WebSub notifications for %s", ", ".join(sorted(report.changed)))
    return report


async def websub_verify(ctx: dict[str, Any], request_id: str, deferrals: int = 0) -> str:
    """Hub: verify the intent of one parked (un)subscription request (``deferrals``: times the
    callback host's budget already put it off)."""
    return await websub.verify(ctx["resources"], request_id, deferrals)


async def websub_notify(ctx: dict[str, Any], feed_name: str, change: str, article_ids: list[str]) -> int:
    """Hub: fan one feed change out to its live subscriptions."""
    return await websub.notify(ctx["resources"], feed_name, change, article_ids)


async def websub_deliver(ctx: dict[str, Any], subscription_id: str, feed_name: str, change: str) -> str:
    """Hub: POST one change to one subscriber; a failure is retried with exponential backoff."""
    res: Resources = ctx["resources"]
    status = await websub.deliver(res, subscription_id, feed_name, change)
    attempt = ctx.get("job_try", 1)
    if status is websub.DeliveryStatus.FAILED:
        if attempt < res.settings.websub.delivery_attempts:
            raise Retry(defer=retry_delay(res.settings.websub, attempt))
        log.warning(
            "hub: gave up delivering %s change %s to %s after %d tries", feed_name, change, subscription_id, attempt
        )
        await DeadLetters(res.redis).add_job(
            "websub_deliver",
            [subscription_id, feed_name, change],
            f"gave up after {attempt} tries",
            attempt,
            res.clock(),
        )
    res.counters.inc("hub_deliveries_total", outcome=str(status))
    return status


async def webhook_deliver(ctx: dict[str, Any], webhook_id: str) -> str:
    """Partner API: POST pending change records to one webhook; a failure is retried with backoff."""
    res: Resources = ctx["resources"]
    attempt = ctx.get("job_try", 1)
    outcome = await webhooks.deliver(res, webhook_id, attempt)
    if outcome is webhooks.Outcome.FAILED:
        if attempt < res.settings.api.webhook_attempts:
            raise Retry(defer=webhooks.retry_delay(res.settings.api, attempt))
        await webhooks.pause(res, webhook_id)
        log.warning("webhook %s: gave up after %d tries; paused", webhook_id, attempt)
    return outcome


async def add_source(
    ctx: dict[str, Any], url: str, source_id: str | None, tags: list[str], interval: int | None
) -> str:
    """The admin page's "add": find the feed behind ``url``, then add it as a run-time source.

    Returns what happened, for the page that shows the job's result; raises when it fails.
    """
    res: Resources = ctx["resources"]
    found = await discover.discover_feed(res.session, url, res.settings.fetch)
    source = discover.new_source(found, res.settings, source_id=source_id, tags=tags, interval=interval)
    await SourceRegistry(res.redis).add(source, res.clock())
    if "live" in ctx:
        await ctx["live"].refresh()
    return f"added {source.id}: {found.url} (found by {found.how})"


async def webhooks_dispatch(ctx: dict[str, Any]) -> int:
    """Cron: queue deliveries for webhooks behind the change log (operator removals, paused ones)."""
    return await webhooks.dispatch(ctx["resources"])


async def changelog_trim(ctx: dict[str, Any]) -> int:
    """Cron: drop change records older than ``[api] changelog_retention_days``."""
    res: Resources = ctx["resources"]
    return await ChangeLog(res.redis).trim(res.settings.api.changelog_retention_days * 86400)


async def push_ingest(ctx: dict[str, Any], source_id: str) -> dict[str, Any]:
    """Push: ingest the fat pings waiting for one source, like a poll's body, then store them."""
    res: Resources = ctx["resources"]
    report = await push_ingested.ingest(res, source_id)
    if report.new or report.updated:
        await ingest_queued(res, ctx["consumer"])
    log.info(
        "push: %s: %d deliveries, %d new, %d updated, %d unchanged, %d unreadable",
        source_id,
        report.deliveries,
        report.new,
        report.updated,
        report.unchanged,
        report.failed,
    )
    return asdict(report)


async def push_look(ctx: dict[str, Any], source_id: str) -> str:
    """Push: subscribe, renew, give up or unsubscribe one source's hub subscription, as due."""
    return await push_subscriptions.look(ctx["resources"], source_id)


async def push_maintain(ctx: dict[str, Any]) -> int:
    """Cron: hand out the subscriptions whose look is due (renewals, retries, fallbacks ending)."""
    res: Resources = ctx["resources"]
    due = await push_subscriptions.claim_due(res)
    tick = res.clock().timestamp()
    for source_id in due:
        await jobs.enqueue(res.redis, "push_look", source_id, job_id=f"push:look:{source_id}:{tick}")
    return len(due)
