"""Whether Redis answers, as a process sees it: one log line when it stops answering and one
when it is back (with how long it was away), never one per failed call; and, for the web, a
gate that lets one call per ``probe_seconds`` find out whether it is back, so that during a
stall the other requests do not each wait a timeout first."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What "Redis is away" looks like from a client: refused, reset, timed out, still loading its
# data after a restart (BusyLoadingError is a ConnectionError). OSError covers the builtin
# ConnectionError and TimeoutError, and socket errors redis-py lets through.
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def describe(exc: BaseException) -> str:
    """A one-line reason: the exception's message, else what its class means."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not text and isinstance(exc, TimeoutError):
        return "no answer in time"
    return text or type(exc).__name__


class Outage:
    """Up or down, as the calls of one process found Redis."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        probe_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.what = what  # "serving the last good renderings", "workers wait and retry", ...
        self.probe_seconds = probe_seconds
        self.monotonic = monotonic
        self.down_since: float | None = None
        self.reason = ""
        self._last_try = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """A call found Redis away: log it if it is news."""
        now = self.monotonic()
        self._last_try = now
        if self.down_since is None:
            self.down_since = now
            self.reason = describe(exc)
            self.log.warning("redis unavailable (%s); %s until it is back", self.reason, self.what)

    def succeeded(self) -> None:
        """A call got an answer: log the end of the outage if there was one."""
        if self.down_since is not None:
            away = self.monotonic() - self.down_since
            self.down_since = None
            self.log.warning("redis is back after %.1f s", away)

    def may_try(self) -> bool:
        """While down, True for one caller per ``probe_seconds``; always True while up."""
        if self.down_since is None:
            return True
        now = self.monotonic()
        if now - self._last_try >= self.probe_seconds:
            self._last_try = now
            return True
        return False
