"""What every ``tributary`` command shares: its context (config file, log settings), ``--config``
after the verb, and the Redis it runs against (``REDIS_URL``, or the data dir's embedded one).

Apart from tributary/cli.py, which registers the command modules (tributary/commands/), so that
they take these from here and not from the module that imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from redis.asyncio import Redis

from service.config import Settings, load_settings
from service.logs import redact
from service.store.connect import ensure_reachable
from service.store.embedded_redis import EmbeddedRedis

log = logging.getLogger("tributary")

Command = TypeVar("Command", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass
class RedisTarget:
    url: str
    embedded: EmbeddedRedis | None  # the embedded Redis this process started (and stops)
    note: str  # for the banner: "embedded, started here", "embedded, already running", ""


@contextlib.contextmanager
def redis_target(settings: Settings) -> Iterator[RedisTarget]:
    """``REDIS_URL`` (its scheme checked and a PING answered), or the data dir's embedded Redis,
    reused if up, else started here and stopped on the way out."""
    if settings.redis_url:
        ensure_reachable(settings.redis_url, settings.server.redis_timeout_seconds)
        yield RedisTarget(settings.redis_url, None, "")
        return
    embedded = EmbeddedRedis(settings.storage.data_dir)
    url = embedded.start()
    owned = embedded if embedded.owned else None
    try:
        yield RedisTarget(url, owned, "embedded, started here" if owned else "embedded, already running")
    finally:
        if owned is not None:
            owned.stop()


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[str]:
    with redis_target(settings) as target:
        log.debug("redis: %s%s", redact(target.url), f" ({target.note})" if target.note else "")
        yield target.url


class Context:
    def __init__(self, config: str | None, log_level: str, log_format: str):
        self.config = config
        self.log_level = log_level
        self.log_format = log_format

    def settings(self) -> Settings:
        return load_settings(self.config)  # a ConfigError is one line (see entrypoint)


def config_option(f: Command) -> Command:
    """Accept ``--config`` after the verb too (``tributary run --config PATH``)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        context = ctx.find_object(Context)
        if value and context is not None:
            context.config = value

    return click.option("--config", callback=remember, expose_value=False, help="config file")(f)


def _run_with_redis(settings: Settings, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``work(redis)`` against the configured Redis, then close it."""

    async def go() -> T:
        redis = Redis.from_url(url)
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    with redis_for(settings) as url:
        return asyncio.run(go())


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in (values or "").split(",") if v.strip()]
