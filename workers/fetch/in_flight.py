"""How many polls one worker process runs at once: ``[worker] max_jobs``, whatever jobs they came in.

A ``poll_batch`` job carries many sources, so arq's job limit alone no longer bounds the polls
(and their bodies and connections). Each poll takes one place here *before* its first Redis
call, so a source waiting for a place holds no lease and no host slot yet; only its claim runs
(and lapses, if it waits that long, for another job to take it over). Places are handed out as
they free up, as many at once as are free, so a batch begins its polls in few calls.
"""

from __future__ import annotations

import asyncio


class InFlight:
    def __init__(self, limit: int):
        self.limit = limit
        self.free = limit
        self._waiters: list[asyncio.Future[None]] = []

    async def take(self, most: int) -> int:
        """Wait for a free place, then take as many as are free, up to ``most`` (>= 1)."""
        while self.free <= 0:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        taken = min(most, self.free)
        self.free -= taken
        return taken

    def give(self, count: int = 1) -> None:
        """Hand back ``count`` places; every waiter looks again (they are few: one per job)."""
        self.free += count
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
