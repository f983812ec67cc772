"""``GET /api/v1/stream``: the change log as Server-Sent Events.

Each record is an event ``change`` whose ``id`` is the record's cursor, so a client that
reconnects with ``Last-Event-ID`` (browsers do it by themselves) resumes right after the last
record it received: nothing missed, nothing twice. While no record concerns the caller, a
comment keeps the connection alive and an id-only event moves its resume point along, so a
quiet view never falls behind the log's retention. A connection ends after
``[api] stream_max_seconds``; the client reconnects.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from service.api.schemas import MAX_LIMIT, StreamQuery
from service.web.api.cors import allow_headers
from service.web.api.params import parse
from service.web.api.state import NOTIFIER, RATE_HEADERS, READER, REQUEST_KEY
from service.web.appkeys import SETTINGS

KEEPALIVE_SECONDS = 15.0

log = logging.getLogger(__name__)


async def stream(request: web.Request) -> web.StreamResponse:
    query = parse(request, StreamQuery)
    reader = request.app[READER]
    view = reader.view(request[REQUEST_KEY].feeds, query.feed)
    position = await reader.start_of_log(request.headers.get("Last-Event-ID") or query.cursor)
    prefix = request.path[: -len("stream")]
    response = web.StreamResponse(
        headers={
            **request.get(RATE_HEADERS, {}),
            **allow_headers(request, prefix),
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.config_dict[SETTINGS].api.stream_max_seconds
    announced = position
    try:
        await response.write(b"retry: 3000\n\n")
        while loop.time() < deadline:
            read = await reader.changes(position, view, MAX_LIMIT)
            for record in read.page.changes:
                await response.write(
                    f"id: {record.cursor}\nevent: change\ndata: {record.model_dump_json()}\n\n".encode()
                )
            position = read.last
            if read.page.changes:
                announced = position
            if read.page.more:
                continue
            if position != announced:  # skipped records only: move the resume point
                await response.write(f"id: {read.page.next_cursor}\n\n".encode())
                announced = position
            waited = min(KEEPALIVE_SECONDS, max(0.0, deadline - loop.time()))
            if not await request.app[NOTIFIER].wait_beyond(position, waited):
                await response.write(b": keep-alive\n\n")
    except ConnectionError:
        pass  # the client went away
    except Exception:  # the answer has started: end the stream, the client reconnects
        log.exception("partner API: event stream failed")
    return response
