"""A drain that follows a worker's polls: once they have queued enough articles, it stores them
while the rest of the batch is still being fetched and parsed.

Why: a batch used to queue everything first and drain only once its last poll ended. A burst
(a worker's first round, a backlog after an outage) then queued more than the hand-off of
:mod:`workers.ingest.drain` keeps, and the drain validated and serialised again most of what
this process had just made, while the parse thread stood idle. Draining behind the polls keeps
the hand-off within its bound and the parse thread and the store busy at the same time.

It waits for ``threshold`` articles or ``threshold_bytes`` of documents (half the hand-off's
bound in each: large articles fill its bytes before its count): a drain round per poll would
cost more in its own round trips, trims and announcements than it saves. One round runs at a
time per process; articles queued during a round add up towards the next. The batch's own drain at its
end (``workers.tasks._after_polls``) still runs, and stores what is left below the threshold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from workers.ingest.drain import HANDOFF_ARTICLES, HANDOFF_BYTES

__all__ = ["DrainBehind"]

log = logging.getLogger(__name__)


class DrainBehind:
    def __init__(
        self,
        drain: Callable[[], Awaitable[object]],
        threshold: int = HANDOFF_ARTICLES // 2,
        threshold_bytes: int = HANDOFF_BYTES // 2,
    ) -> None:
        self._drain = drain
        self._threshold = threshold
        self._threshold_bytes = threshold_bytes
        self._queued = 0
        """Articles queued since the last round began."""
        self._queued_bytes = 0
        """Their documents' bytes."""
        self._task: asyncio.Task[None] | None = None

    def queued(self, count: int, size: int = 0) -> None:
        """A poll queued ``count`` articles of ``size`` bytes of documents; starts a round once
        enough wait (never waits, never raises)."""
        self._queued += count
        self._queued_bytes += size
        if self._enough() and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._rounds(), name="drain-behind")

    def _enough(self) -> bool:
        return self._queued >= self._threshold or self._queued_bytes >= self._threshold_bytes

    async def _rounds(self) -> None:
        while self._enough():
            self._queued = self._queued_bytes = 0
            try:
                await self._drain()
            except Exception as exc:  # Redis away, a bug: the batch's own drain and the cron try again
                log.warning("drain behind the polls failed, left to the next drain: %r", exc)
                return

    async def close(self) -> None:
        """Stop a round in progress: what it read and did not acknowledge is read again later."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
