"""Building blocks for poll tests: settings with one [fetch] override set, and Resources."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from service.config import Settings, settings_from_dict
from service.store.articles import Store
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
