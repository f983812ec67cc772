"""Push ingest of fat pings: what a hub delivered goes the way of a polled body.

``push_ingest(source_id)`` takes everything in the source's inbox (the web side put it there
after checking its signature) and reads each body with
:func:`workers.poll.pipeline.read_body`, the poll's own parse → normalise → queue path: same
article ids, same new/changed check, same ingest stream; the job then drains the stream like a
poll does. Deliveries that arrive meanwhile are taken by the same job (it loops until the
inbox is empty) or by the next window's job. A source that left or was disabled has its inbox
dropped.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from service.errors import SourceError
from service.store.push_inbox import PushInbox
from workers.fetch.client import FetchResult
from workers.poll.pipeline import read_body
from workers.resources import Resources

log = logging.getLogger(__name__)

MAX_ROUNDS = 10
"""Inbox emptied at most this often per job; a hub that never stops is left to the next job."""


@dataclass
class PushIngestReport:
    source_id: str
    deliveries: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    dropped: int = 0


async def ingest(res: Resources, source_id: str) -> PushIngestReport:
    report = PushIngestReport(source_id)
    inbox = PushInbox(res.redis)
    source = res.settings.source(source_id)
    if source is None or await res.store.sources.is_disabled(source_id):
        report.dropped = len(await inbox.take(source_id))
        return report
    seen: set[bytes] = set()  # a hub retrying one delivery: read it once
    for _ in range(MAX_ROUNDS):
        deliveries = await inbox.take(source_id)
        if not deliveries:
            break
        for delivery in deliveries:
            digest = hashlib.sha256(delivery.body).digest()
            report.deliveries += 1
            if digest in seen:
                continue
            seen.add(digest)
            result = FetchResult(
                url=source.url, status=200, headers={"content-type": delivery.content_type}, body=delivery.body
            )
            try:
                found = await read_body(res, source, result, res.clock())
            except SourceError as exc:
                report.failed += 1
                log.warning("push: a delivery for %s could not be read: %s: %s", source_id, exc.kind, exc.message)
                continue
            report.new += found.new
            report.updated += found.updated
            report.unchanged += found.unchanged
    return report
