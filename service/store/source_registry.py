"""Sources added, removed or changed at run time, over the config file's (the seed).

The TOML file stays the seed. ``tributary sources add|remove``, the admin page and
``import-opml`` into a running service change an overlay in Redis instead of requiring a restart:

- ``sources:runtime``: id -> SourceConfig JSON, added (or replacing a seed source of that id);
- ``sources:removed``: ids of seed sources removed at run time (adding the id again clears it);
- ``sources:version``: bumped on every change, and by ``tributary reload`` / ``SIGHUP``. Each
  process checks it (workers about once a second, the web side on the pages that list sources)
  and rebuilds its settings: the file re-read, then the overlay applied
  (:class:`LiveSettings`). Source state is keyed by source id, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from redis.asyncio import Redis

from service import keys
from service.config import Settings, SourceConfig, load_settings
from service.errors import ConfigError
from service.store.source_state import SourceStates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overlay:
    added: dict[str, SourceConfig] = field(default_factory=dict)
    removed: frozenset[str] = frozenset()
    version: int = 0


def effective(seed: Settings, overlay: Overlay) -> Settings:
    """The seed's sources less the removed ones, with the added ones (an added id replaces the seed's)."""
    seed_ids = {s.id for s in seed.sources}
    kept = [overlay.added.get(s.id, s) for s in seed.sources if s.id not in overlay.removed]
    return seed.with_sources([*kept, *(s for s in overlay.added.values() if s.id not in seed_ids)])


def unselected(settings: Settings, source_ids: list[str]) -> list[str]:
    """Those of ``source_ids`` that no merged feed shows (no feed names them or their tags)."""
    return [s for s in source_ids if not settings.feeds_of_source(s)]


class SourceRegistry:
    def __init__(self, redis: Redis):
        self.redis = redis

    async def version(self) -> int:
        return int(await self.redis.get(keys.SOURCES_VERSION) or 0)

    async def overlay(self) -> Overlay:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.RUNTIME_SOURCES)
            pipe.smembers(keys.REMOVED_SOURCES)
            pipe.get(keys.SOURCES_VERSION)
            added_raw, removed_raw, version = await pipe.execute()
        added = {}
        for source_id, raw in added_raw.items():
            try:
                added[source_id.decode()] = SourceConfig.model_validate_json(raw)
            except ValidationError as exc:  # written by another version: skipped, not fatal
                log.error("run-time source %s cannot be read, skipped: %s", source_id.decode(), exc)
        return Overlay(added, frozenset(m.decode() for m in removed_raw), int(version or 0))

    async def add(self, source: SourceConfig, now: datetime) -> int:
        """Add (or replace) a source; it is due at once. Returns the new version."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.RUNTIME_SOURCES, source.id, source.model_dump_json(exclude_defaults=True))
            pipe.srem(keys.REMOVED_SOURCES, source.id)
            pipe.incr(keys.SOURCES_VERSION)
            *_, version = await pipe.execute()
        await SourceStates(self.redis).schedule_new([source.id], now)
        return int(version)

    async def remove(self, source_id: str) -> int:
        """Remove a source (its state and articles stay; see ``Store.remove_source_articles``)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.RUNTIME_SOURCES, source_id)
            pipe.sadd(keys.REMOVED_SOURCES, source_id)
            pipe.incr(keys.SOURCES_VERSION)
            *_, version = await pipe.execute()
        await SourceStates(self.redis).unschedule(source_id)
        return int(version)

    async def announce(self) -> int:
        """Ask every process to re-read the config file (``tributary reload``, ``SIGHUP``)."""
        return int(await self.redis.incr(keys.SOURCES_VERSION))


Listener = Callable[[Settings], None]


class LiveSettings:
    """This process's effective settings: the config file (re-read on a change) with the overlay."""

    def __init__(self, seed: Settings, redis: Redis):
        self.seed = seed
        self.current = seed
        self.registry = SourceRegistry(redis)
        self.version: int | None = None
        self.listeners: list[Listener] = []

    async def refresh(self, *, force: bool = False) -> bool:
        """Rebuild when the version moved (or ``force``); True when the settings were rebuilt."""
        version = await self.registry.version()
        if version == self.version and not force:
            return False
        overlay = await self.registry.overlay()
        if self.version is not None and self.seed.origin is not None:
            try:
                self.seed = load_settings(self.seed.origin)
            except ConfigError as exc:
                log.error("reload: keeping the previous config: %s", exc)
        try:
            current = effective(self.seed, overlay)
        except (ConfigError, ValidationError) as exc:
            log.error("reload: the run-time sources do not apply, keeping the previous settings: %s", exc)
            self.version = version
            return False
        self.current, self.version = current, overlay.version
        for listener in self.listeners:
            listener(current)
        return True
