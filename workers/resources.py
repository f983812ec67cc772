"""What a worker's jobs share, built once per worker process in ``on_startup`` and passed in.

Every stage that needs I/O (poll, article pages, hub deliveries) takes this instead of reaching
for globals, so tests build one with their own Redis, session and clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from redis.asyncio import Redis

from service.clock import Clock
from service.config import Settings
from service.store.articles import Store
from service.store.worker_counters import Counters
from workers.fetch.host_budget import HostBudget
from workers.fetch.in_flight import InFlight


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
