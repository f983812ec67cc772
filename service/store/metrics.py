"""Worker counters, summed across every worker process in one Redis hash for ``/metrics``.

Why Redis and not prometheus-client's multiprocess mode: workers run anywhere that reaches the
Redis (other hosts, other containers), while only the web process is scraped; a shared
multiprocess directory works only for processes of one host. So each worker process counts in
memory (a dict increment on the poll's path, no I/O) and :meth:`Counters.flush` adds what it
counted since the last flush to ``keys.METRICS`` with one pipelined ``HINCRBYFLOAT`` per series,
about once a second. The totals survive worker restarts, as Prometheus counters should; a flush
lost with a killed worker loses at most a second of counts.

A series is stored as ``name|label=value|label=value`` (labels sorted); :func:`read_totals`
gives them back as (name, labels) for the exporter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from redis.asyncio import Redis

from service import keys

ACTIVITY_SECONDS = 2 * 3600
FETCH_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)

Labels = tuple[tuple[str, str], ...]


def series(name: str, labels: dict[str, str]) -> str:
    return "|".join([name, *(f"{k}={v}" for k, v in sorted(labels.items()))])


def parse_series(raw: str) -> tuple[str, Labels]:
    name, *pairs = raw.split("|")
    return name, tuple((k, v) for k, _, v in (pair.partition("=") for pair in pairs))


class Counters:
    """One process's counts since its last flush."""

    def __init__(self) -> None:
        self._pending: defaultdict[str, float] = defaultdict(float)
        self._minutes: defaultdict[tuple[int, str], int] = defaultdict(int)

    def tick(self, what: str, count: int, now: datetime) -> None:
        """Count ``what`` (``polls``, ``new``) in the minute of ``now``, for the last hour's chart."""
        self._minutes[(int(now.timestamp() // 60), what)] += count

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._pending[series(name, labels)] += value

    def observe(self, name: str, value: float, buckets: Sequence[float] = FETCH_SECONDS_BUCKETS) -> None:
        """A histogram observation: cumulative ``_bucket`` counts, ``_sum`` and ``_count``."""
        for bound in buckets:
            if value <= bound:
                self._pending[series(name + "_bucket", {"le": repr(bound)})] += 1
        self._pending[series(name + "_bucket", {"le": "+Inf"})] += 1
        self._pending[name + "_sum"] += value
        self._pending[name + "_count"] += 1

    async def flush(self, redis: Redis) -> None:
        """Add the pending counts to the shared totals; kept for the next try if Redis fails."""
        if not self._pending and not self._minutes:
            return
        pending, self._pending = self._pending, defaultdict(float)
        minutes, self._minutes = self._minutes, defaultdict(int)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for key, value in pending.items():
                    pipe.hincrbyfloat(keys.METRICS, key, value)
                for (minute, what), count in minutes.items():
                    pipe.hincrby(keys.activity(minute), what, count)
                    pipe.expire(keys.activity(minute), ACTIVITY_SECONDS)
                await pipe.execute()
        except BaseException:
            for key, value in pending.items():
                self._pending[key] += value
            for slot, count in minutes.items():
                self._minutes[slot] += count
            raise


async def activity(redis: Redis, now: datetime, minutes: int = 60) -> list[tuple[int, int, int]]:
    """(unix minute, polls, new articles) for each of the last ``minutes`` minutes, oldest first."""
    last = int(now.timestamp() // 60)
    span = range(last - minutes + 1, last + 1)
    async with redis.pipeline(transaction=False) as pipe:
        for minute in span:
            pipe.hmget(keys.activity(minute), "polls", "new")
        rows = await pipe.execute()
    return [(minute, int(polls or 0), int(new or 0)) for minute, (polls, new) in zip(span, rows, strict=True)]


async def read_totals(redis: Redis) -> dict[tuple[str, Labels], float]:
    """Every worker series with its total."""
    raw = await redis.hgetall(keys.METRICS)
    return {parse_series(k.decode()): float(v) for k, v in raw.items()}
