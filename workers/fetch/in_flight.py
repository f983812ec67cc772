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
        self._serving = False  # a waiter was woken and has not run yet: it takes what comes back meanwhile

    async def take(self, most: int) -> int:
        """Wait for a free place, then take as many as are free, up to ``most`` (>= 1).

        Waiters are served in turn; the one served takes every place freed meanwhile, so the
        places that come back during one loop turn begin as one group.
        """
        if self.free <= 0 or self._waiters:
            await self._wait()
        while self.free <= 0:  # taken meanwhile by a caller that found places free
            await self._wait()
        taken = min(most, self.free)
        self.free -= taken
        if self.free > 0:
            self._wake()
        return taken

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            else:
                self._serving = False
                if self.free > 0:
                    self._wake()  # it was this one's turn: pass it on
            raise
        self._serving = False

    def give(self, count: int = 1) -> None:
        """Hand back ``count`` places; the next waiter takes them once this loop turn is over."""
        self.free += count
        if not self._serving:  # the waiter woken already takes these too: one wake-up, not one per place
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                self._serving = True
                return
