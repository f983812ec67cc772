"""What ``tributary run`` prints: one banner before it starts its children, and one summary line
once every source has been polled (or has waited long enough): how many are fine and how many
fail, and why."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.clock import utcnow
from service.config import Settings
from service.logs import redact
from service.models import SourceState
from service.store.availability import REDIS_DOWN
from service.store.source_state import SourceStates

log = logging.getLogger("tributary")

FAILING_HINT = "see /admin or `.venv/bin/tributary sources --failing`"
MAX_NAMED = 5  # failing sources named in the summary line


LOOPBACK_FOR_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (mapped, not bound)
"""A wildcard bind is reached on this machine through the loopback of its family: ``::1``
answers a ``::`` bind whether or not it is dual-stack (tributary/listener.py)."""


def local_url(settings: Settings) -> str:
    """Where a person (or a healthcheck) on this machine reaches the web server."""
    host = LOOPBACK_FOR_WILDCARD.get(settings.server.host, settings.server.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.server.port}/"


def banner(settings: Settings, config_file: Path, redis_url: str, redis_note: str) -> list[str]:
    try:
        version = metadata.version("tributary")
    except metadata.PackageNotFoundError:
        version = "?"
    worker = settings.worker
    sources = len(settings.sources)
    feeds = len(settings.feeds)
    return [
        f"Tributary {version}",
        f"  config    {config_file}",
        f"  data dir  {settings.storage.data_dir}",
        f"  redis     {redact(redis_url)}" + (f" ({redis_note})" if redis_note else ""),
        f"  sources   {sources} source{'s' * (sources != 1)}, {feeds} merged feed{'s' * (feeds != 1)}",
        f"  open      {local_url(settings)}",
        f"  workers   {worker.processes} process{'es' * (worker.processes != 1)}, "
        f"{worker.max_jobs} jobs each; readiness at {local_url(settings)}readyz",
    ]


def round_done(states: Mapping[str, SourceState | None], since: datetime, now: datetime) -> bool:
    """Every source has been polled since ``since``, is disabled, or is not due yet."""
    for state in states.values():
        if state is None:
            return False
        polled = state.last_poll is not None and state.last_poll >= since
        waiting = state.next_poll is not None and state.next_poll > now
        if not (polled or state.disabled or waiting):
            return False
    return True


def round_summary(states: Mapping[str, SourceState | None]) -> str:
    """``6 sources: 4 ok, 2 failing (dns): a, b; see /admin or `…tributary sources --failing```."""
    ok, failing, disabled, unpolled = [], [], [], []
    kinds: Counter[str] = Counter()
    for source_id, state in states.items():
        if state is None or state.last_poll is None:
            unpolled.append(source_id)
        elif state.disabled:
            disabled.append(source_id)
        elif state.consecutive_failures:
            failing.append(source_id)
            kinds[state.last_error_kind or "unknown"] += 1
        else:
            ok.append(source_id)
    total = len(states)
    parts = [f"{len(ok)} ok"]
    if failing:
        ranked = kinds.most_common()
        why = ranked[0][0] if len(ranked) == 1 else ", ".join(f"{kind}: {n}" for kind, n in ranked)
        parts.append(f"{len(failing)} failing ({why})")
    if disabled:
        parts.append(f"{len(disabled)} disabled")
    if unpolled:
        parts.append(f"{len(unpolled)} not polled yet")
    line = f"{total} source{'s' * (total != 1)}: " + ", ".join(parts)
    named = sorted(failing + disabled)
    if named:
        more = f" and {len(named) - MAX_NAMED} more" if len(named) > MAX_NAMED else ""
        line += f": {', '.join(named[:MAX_NAMED])}{more}; {FAILING_HINT}"
    return line


async def read_states(states: SourceStates, source_ids: Sequence[str]) -> dict[str, SourceState | None]:
    """Each source's state through the one owner of source state; None for one never polled."""
    found = await states.get_many(source_ids)
    return {source_id: state if state.last_poll is not None else None for source_id, state in found.items()}


def summarise_first_round(
    settings: Settings, redis_url: str, stop: threading.Event, *, poll_seconds: float = 1.0
) -> threading.Thread:
    """In the background: log :func:`round_summary` once the first round is done (or after a
    bound: a source still trying by then is reported as not polled yet)."""
    started = utcnow()
    bound = timedelta(seconds=2 * settings.fetch.timeout_seconds + 30)
    source_ids = [s.id for s in settings.sources]

    async def watch_round() -> None:
        client = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        owner = SourceStates(client)
        try:
            while not await asyncio.to_thread(stop.wait, poll_seconds):
                try:
                    states = await read_states(owner, source_ids)
                except (*REDIS_DOWN, RedisError):
                    continue  # Redis away: the workers log that; try again
                now = utcnow()
                if round_done(states, started, now) or now - started >= bound:
                    log.info("%s", round_summary(states))
                    return
        finally:
            await client.aclose()

    def watch() -> None:
        asyncio.run(watch_round())

    thread = threading.Thread(target=watch, name="first-round-summary", daemon=True)
    thread.start()
    return thread
