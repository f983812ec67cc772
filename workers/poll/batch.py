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
from collections.abc import Coroutine, Sequence
from typing import Any

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
    polls = _Polls()
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
                polls.start(_run(res, in_flight, polls, len(polls.outcomes), source, begin, start, ends))
    finally:
        await polls.ended()
        # The ends of one Redis call share a future (other batches' polls may wait on it too).
        written = await asyncio.gather(*map(asyncio.shield, dict.fromkeys(ends)), return_exceptions=True)
    for outcome in [*polls.outcomes, *written]:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in polls.outcomes if isinstance(outcome, PollReport)]


class _Polls:
    """A batch's poll tasks and their outcomes, in order, and one future done once every poll
    begun has ended: what ``gather`` did, without a done callback (a loop turn) per poll."""

    def __init__(self) -> None:
        self.outcomes: list[PollReport | BaseException | None] = []
        self._tasks: list[asyncio.Task[None]] = []  # strong references: the loop keeps only weak ones
        self._running = 0
        self._all_ended: asyncio.Future[None] | None = None

    def start(self, poll: Coroutine[Any, Any, None]) -> None:
        """Run ``poll``, which reports its outcome to :meth:`ended_one` under the next index."""
        self.outcomes.append(None)
        self._running += 1
        self._tasks.append(asyncio.create_task(poll))

    def ended_one(self, index: int, outcome: PollReport | BaseException) -> None:
        self.outcomes[index] = outcome
        self._running -= 1
        if self._running == 0 and self._all_ended is not None and not self._all_ended.done():
            self._all_ended.set_result(None)

    async def ended(self) -> None:
        """Wait until every poll begun has ended; cancelled meanwhile, cancel them (as ``gather``)."""
        if self._running == 0:
            return
        self._all_ended = asyncio.get_running_loop().create_future()
        try:
            await self._all_ended
        except asyncio.CancelledError:
            for task in self._tasks:
                task.cancel()
            raise


async def _run(
    res: Resources,
    in_flight: InFlight,
    polls: _Polls,
    index: int,
    source: SourceConfig,
    begin: PollBegin,
    start: PollStart | Refusal,
    ends: list[asyncio.Future[None]],
) -> None:
    bind_source(source.id)  # this task's log lines name its source
    outcome: PollReport | BaseException
    try:
        outcome = await run_poll(res, source, begin, start, ends=ends)
    except (Exception, asyncio.CancelledError) as exc:  # raised by the batch once every poll has ended
        outcome = exc
    finally:
        in_flight.give()
    polls.ended_one(index, outcome)
