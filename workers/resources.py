"""What a worker's jobs share, built once per worker process in ``on_startup`` and passed in.

Every stage that needs I/O (poll, article pages, hub deliveries) takes this instead of reaching
for globals, so tests build one with their own Redis, session and clock.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from redis.asyncio import Redis

from service.clock import Clock
from service.config import Settings
from service.store.articles import Store
from service.store.worker_counters import Counters
from workers.fetch.host_budget import HostBudget
from workers.fetch.in_flight import InFlight

T = TypeVar("T")


@dataclass
class Resources:
    """What a poll needs, built once per worker process and passed in (never global)."""

    settings: Settings
    redis: Redis
    store: Store
    session: aiohttp.ClientSession
    clock: Clock
    hosts: HostBudget | None = None
    counters: Counters = field(default_factory=Counters)
    """This process's metrics, flushed to Redis about once a second (service/store/metrics.py)."""
    in_flight: InFlight | None = None
    cpu: ThreadPoolExecutor | None = None
    on_queued: Callable[[int, int], None] | None = None
    """Told how many articles a poll just queued, and their documents' bytes: a worker drains behind its polls
    (:class:`workers.ingest.behind.DrainBehind`); None where the caller drains itself."""

    def host_budget(self) -> HostBudget:
        if self.hosts is None:
            # One pipeline per loop turn for the polls' begin/end calls and the host budget's.
            self.hosts = HostBudget(self.redis, self.settings.fetch, batcher=self.store.sources.batcher)
        return self.hosts

    def polls_in_flight(self) -> InFlight:
        """The process's places for polls (``[worker] max_jobs``; :mod:`workers.fetch.in_flight`)."""
        if self.in_flight is None:
            self.in_flight = InFlight(self.settings.worker.max_jobs)
        return self.in_flight

    async def off_loop(self, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run CPU-bound ``work`` (parse, normalise, extract) in the process's parse threads,
        with the caller's context (its log ids), so the event loop keeps other sources' I/O moving.

        Its own pool of ``[worker] parse_threads`` (1), not asyncio's default one: parsing threads
        contend for the GIL (bench/ingest.py, one worker: 812-916 articles per worker CPU second with
        one thread against 630-710 with the default pool), and DNS lookups use the default pool.
        """
        if self.cpu is None:
            self.cpu = ThreadPoolExecutor(self.settings.worker.parse_threads, thread_name_prefix="parse")
        call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.cpu, call)

    def close(self) -> None:
        """Let the parse threads go (the session is closed by its owner)."""
        if self.cpu is not None:
            self.cpu.shutdown(wait=False, cancel_futures=True)
