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

from bisect import bisect_left
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
    """One process's counts since its last flush.

    The poll's path only adds to dicts keyed by raw tuples; series names are spelled and
    histogram buckets made cumulative at :meth:`flush`, once a second.
    """

    def __init__(self) -> None:
        self._pending: defaultdict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._histograms: dict[str, _Histogram] = {}
        self._minutes: defaultdict[tuple[int, str], int] = defaultdict(int)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._pending[(name, tuple(labels.items()))] += value

    def observe(self, name: str, value: float, buckets: Sequence[float] = FETCH_SECONDS_BUCKETS) -> None:
        """A histogram observation (``_bucket`` with ``le``, ``_sum``, ``_count`` in Redis)."""
        histogram = self._histograms.get(name)
        if histogram is None:
            histogram = self._histograms[name] = _Histogram(tuple(buckets))
        histogram.counts[bisect_left(histogram.bounds, value)] += 1
        histogram.total += value

    def tick(self, what: str, count: int, now: datetime) -> None:
        """Count ``what`` (``polls``, ``new``) in the minute of ``now``, for the last hour's chart."""
        self._minutes[(int(now.timestamp() // 60), what)] += count

    def _drain(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for (name, labels), value in self._pending.items():
            totals[series(name, dict(labels))] = value
        for name, histogram in self._histograms.items():
            if not histogram.observations:
                continue
            running = 0
            for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
                running += count
                if running:
                    totals[series(name + "_bucket", {"le": repr(bound)})] = running
            totals[series(name + "_bucket", {"le": "+Inf"})] = histogram.observations
            totals[name + "_sum"] = histogram.total
            totals[name + "_count"] = histogram.observations
        self._pending.clear()
        self._histograms.clear()
        return totals

    async def flush(self, redis: Redis) -> None:
        """Add the pending counts to the shared totals; kept for the next try if Redis fails."""
        if not self._pending and not self._histograms and not self._minutes:
            return
        totals = self._drain()
        minutes, self._minutes = self._minutes, defaultdict(int)
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for key, value in totals.items():
                    pipe.hincrbyfloat(keys.METRICS, key, value)
                for (minute, what), count in minutes.items():
                    pipe.hincrby(keys.activity(minute), what, count)
                    pipe.expire(keys.activity(minute), ACTIVITY_SECONDS)
                await pipe.execute()
        except BaseException:
            for key, value in totals.items():
                name, labels = parse_series(key)
                self._pending[(name, labels)] += value
            for slot, count in minutes.items():
                self._minutes[slot] += count
            raise


class _Histogram:
    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.total = 0.0

    @property
    def observations(self) -> int:
        return sum(self.counts)


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
