"""Building blocks for poll tests: settings with one [fetch] override set, and Resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from service.config import Settings, settings_from_dict
from service.store.articles import Store
from service.store.host_slots import HostLimits
from service.store.source_state import PollBegin, PollStart, Refusal, SourceStates
from tests.conftest import ManualClock
from workers.fetch.client import new_session
from workers.resources import Resources

TEST_FETCH = {"allow_private_networks": True, "timeout_seconds": 5, "jitter_fraction": 0}


def poll_settings(sources: list[dict[str, Any]], **fetch: Any) -> Settings:
    """Sources default to a 600 s interval without adaptive scheduling, so times are exact."""
    full = [{"interval_seconds": 600, "adaptive": False, **s} for s in sources]
    return settings_from_dict({"fetch": {**TEST_FETCH, **fetch}, "sources": full})


def resources(settings: Settings, redis: Redis, clock: ManualClock, **session: Any) -> Resources:
    return Resources(settings, redis, Store(redis, settings), new_session(settings.fetch, **session), clock)


async def begin_one(
    sources: SourceStates,
    source_id: str,
    lease: str,
    host: str,
    limits: HostLimits,
    now: datetime,
    claim: str | None = None,
) -> PollStart | Refusal:
    """One poll's first call, as a batch of one begins it (a lease of 60 s)."""
    return (await sources.begin_polls([PollBegin(source_id, lease, 60_000, host, limits, now, claim)]))[0]
