"""Polling a batch of sources: the dispatcher hands a worker many due sources in one job.

Each poll is the one of :mod:`workers.poll.pipeline` (the same decision, the same end); a batch
saves the per-poll overhead around it: one arq job for many sources, their leases, states and
host slots taken in one Lua call per group of places free in the process
(:class:`workers.fetch.in_flight.InFlight`), and their ends written together as they come in
(:meth:`service.store.source_state.SourceStates.end_poll` writes the ends of one event-loop turn
in one call), so a slow source holds back no other source's state.

A worker killed mid-batch strands nothing: every lease, claim and host slot it held lapses on
its own, as for a single poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.config import SourceConfig
from service.logs import bind_source
from service.store.source_state import PollBegin, PollStart, Refusal
from workers.fetch.in_flight import InFlight
from workers.poll.pipeline import PollReport, poll_begin, run_poll
from workers.resources import Resources


async def poll_batch(res: Resources, sources: Sequence[SourceConfig], claim: str | None = None) -> list[PollReport]:
    """Poll every source once, concurrently within the process's places; reports in order.

    Never raises for a source's own failure. Anything else (Redis going away, a bug) is raised
    once every poll already begun has ended.
    """
    in_flight = res.polls_in_flight()
    runs: list[asyncio.Task[PollReport]] = []
    ends: list[asyncio.Future[None]] = []  # the polls' last calls, written as they come in
    pending = list(sources)
    try:
        while pending:
            count = await in_flight.take(len(pending))
            group, pending = pending[:count], pending[count:]
            try:
                begins = [poll_begin(res, source, claim) for source in group]
                starts = await res.store.sources.begin_polls(begins)
            except BaseException:
                in_flight.give(count)
                raise
            for source, begin, start in zip(group, begins, starts, strict=True):
                runs.append(asyncio.create_task(_run(res, in_flight, source, begin, start, ends)))
    finally:
        outcomes = await asyncio.gather(*runs, return_exceptions=True)
        # The ends of one Redis call share a future (other batches' polls may wait on it too).
        written = await asyncio.gather(*map(asyncio.shield, dict.fromkeys(ends)), return_exceptions=True)
    for outcome in [*outcomes, *written]:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]


async def _run(
    res: Resources,
    in_flight: InFlight,
    source: SourceConfig,
    begin: PollBegin,
    start: PollStart | Refusal,
    ends: list[asyncio.Future[None]],
) -> PollReport:
    bind_source(source.id)  # this task's log lines name its source
    try:
        return await run_poll(res, source, begin, start, ends=ends)
    finally:
        in_flight.give()
