"""``GET /metrics``: Prometheus text, every name prefixed ``tributary_`` (docs/operations.md#metrics).

Three origins, one scrape:

- the workers' counters (polls by outcome, fetch latency and bytes, articles, jobs, hub
  deliveries), summed across every worker process in Redis (service/store/metrics.py);
- figures read from Redis at scrape time (sources by health and by push state, ingest stream,
  arq queue, late sources, paused hosts, dead letters, Redis memory, per-source series under a
  cap);
- this web process's own counts (requests by route and status, render cache hits), kept as plain
  integers on the request path: one dict increment per response (:class:`RequestCounts`), by a
  middleware bound to every route (:mod:`service.web.bound_routes`) but the cached feed routes,
  which count their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractResource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis.asyncio import Redis

from service.config import Settings
from service.feeds.cache import FeedCache
from service.models import PushStatus
from service.status import Health
from service.store.overview import Overview, SourceRow, overview, source_rows
from service.store.worker_counters import Labels, read_totals
from service.web.appkeys import CLOCK, FEED_CACHE, LIVE, REDIS, REQUEST_COUNTS
from service.web.bound_routes import BoundRoutes

WORKER_COUNTERS = {
    "polls_total": (
        "tributary_polls",
        "Polls that asked the publisher, by outcome (modified, not_modified, error kind)",
    ),
    "articles_total": ("tributary_articles", "Articles seen by polls, by outcome (new, updated, unchanged)"),
    "fetch_bytes_total": ("tributary_fetch_bytes", "Body bytes fetched by polls (after decompression)"),
    "jobs_total": ("tributary_jobs", "Worker jobs by function and status (complete, failed, retried)"),
    "hub_deliveries_total": ("tributary_hub_deliveries", "WebSub deliveries by outcome"),
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format generate_latest writes by default
FETCH_HISTOGRAM = ("fetch_duration_seconds", "tributary_fetch_duration_seconds", "Time to fetch a source")


class RequestCounts:
    """Responses of this web process by route and status, and its render cache's hits."""

    def __init__(self) -> None:
        self.counts: defaultdict[tuple[AbstractResource, int], int] = defaultdict(int)
        self._labels: dict[AbstractResource, str] = {}

    def label(self, resource: AbstractResource, route: str) -> None:
        """Count ``resource`` under ``route`` (a pattern it is one instance of), not its own path."""
        self._labels[resource] = route

    def count(self, request: web.Request, status: int) -> None:
        self.counts[(request.match_info.route.resource, status)] += 1  # type: ignore[index]

    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts the answer, an ``HTTPException`` raised as one included; aiohttp answers 500
        for any other exception."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.count(request, exc.status)
            raise
        except Exception:
            self.count(request, 500)
            raise
        self.count(request, response.status)
        return response

    def by_route(self) -> dict[tuple[str, str], int]:
        totals: defaultdict[tuple[str, str], int] = defaultdict(int)
        for (resource, status), count in list(self.counts.items()):
            route = "other" if resource is None else self._labels.get(resource, resource.canonical)
            if route.endswith("/{path}"):  # a catch-all (the root's, a sub-app's): unknown paths are one route
                route = "other"
            totals[(route, str(status))] += count
        return totals


class _Families:
    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)

    def describe(self) -> list[Metric]:
        return []


def worker_families(totals: dict[tuple[str, Labels], float]) -> list[Metric]:
    families: dict[str, CounterMetricFamily] = {}
    buckets: list[tuple[str, float]] = []
    histogram_sum = histogram_count = 0.0
    for (name, labels), value in sorted(totals.items()):
        if name in WORKER_COUNTERS:
            family_name, help_text = WORKER_COUNTERS[name]
            family = families.get(name)
            if family is None:
                family = families[name] = CounterMetricFamily(family_name, help_text, labels=[k for k, _ in labels])
            family.add_metric([v for _, v in labels], value)
        elif name == FETCH_HISTOGRAM[0] + "_bucket":
            buckets.append((dict(labels)["le"], value))
        elif name == FETCH_HISTOGRAM[0] + "_sum":
            histogram_sum = value
        elif name == FETCH_HISTOGRAM[0] + "_count":
            histogram_count = value
    result: list[Metric] = list(families.values())
    if histogram_count:
        ordered = sorted(buckets, key=lambda b: float("inf") if b[0] == "+Inf" else float(b[0]))
        histogram = HistogramMetricFamily(FETCH_HISTOGRAM[1], FETCH_HISTOGRAM[2])
        histogram.add_metric([], [(le, count) for le, count in ordered], histogram_sum)
        result.append(histogram)
    return result


def capped(rows: list[SourceRow], limit: int) -> list[SourceRow]:
    """Every source when there are at most ``limit``, else the worst: failing first (most failures
    in a row), then the longest without a success."""
    if len(rows) <= limit:
        return rows

    def badness(row: SourceRow) -> tuple[int, float]:
        success = row.state.last_success.timestamp() if row.state.last_success else float("-inf")
        return (-row.state.consecutive_failures, success)

    return sorted(rows, key=badness)[:limit]


def scrape_families(view: Overview, rows: list[SourceRow], memory: int, settings: Settings) -> list[Metric]:
    def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, help_text, value=value)

    sources = GaugeMetricFamily("tributary_sources", "Sources by health", labels=["health"])
    for health in Health:
        sources.add_metric([health.value], view.health.get(health, 0))
    push = GaugeMetricFamily(
        "tributary_sources_push", "Sources subscribed to their publisher's WebSub hub, by state", labels=["state"]
    )
    for status in PushStatus:
        push.add_metric([status.value], view.push.get(status, 0))
    dead = GaugeMetricFamily("tributary_dead_letters", "Dead letters kept, by kind", labels=["kind"])
    for kind, count in sorted(view.dead_letters.items()):
        dead.add_metric([kind], count)
    last_success = GaugeMetricFamily(
        "tributary_source_last_success_timestamp_seconds", "Last successful poll per source", labels=["source"]
    )
    failures = GaugeMetricFamily(
        "tributary_source_consecutive_failures", "Failed polls in a row per source", labels=["source"]
    )
    for row in capped(rows, settings.metrics.max_source_series):
        if row.state.last_success is not None:
            last_success.add_metric([row.id], row.state.last_success.timestamp())
        failures.add_metric([row.id], row.state.consecutive_failures)
    return [
        sources,
        push,
        gauge("tributary_ingest_stream_length", "Entries waiting in the ingest stream", view.ingest_length),
        gauge("tributary_ingest_pending", "Ingest entries read but not yet acknowledged", view.ingest_pending),
        gauge("tributary_ingest_oldest_age_seconds", "Age of the oldest ingest entry", view.ingest_oldest_seconds),
        gauge("tributary_arq_queue_depth", "Jobs queued for the workers", view.queue_depth),
        gauge("tributary_late_sources", "Sources due for over a minute that no worker claimed", view.late_sources),
        gauge("tributary_late_sources_max_lag_seconds", "How late the latest-running source is", view.late_max_seconds),
        gauge("tributary_paused_hosts", "Hosts paused by a Retry-After", view.paused_hosts),
        gauge("tributary_redis_memory_bytes", "Memory Redis uses", memory),
        dead,
        last_success,
        failures,
    ]


def web_families(counts: RequestCounts, cache: FeedCache) -> list[Metric]:
    requests = CounterMetricFamily(
        "tributary_http_requests", "Responses of this web process by route and status", labels=["route", "status"]
    )
    for (route, status), count in sorted(counts.by_route().items()):
        requests.add_metric([route, status], count)
    render = CounterMetricFamily(
        "tributary_render_cache",
        "Feed requests served from the render cache (hit) or rendered (miss)",
        labels=["result"],
    )
    render.add_metric(["hit"], cache.hits)
    render.add_metric(["miss"], cache.misses)
    return [requests, render]


async def collect(redis: Redis, settings: Settings, now: datetime) -> list[Metric]:
    rows = await source_rows(redis, settings.sources, now)
    view = await overview(redis, rows, now)
    memory = int((await redis.info("memory")).get("used_memory", 0))
    return [*worker_families(await read_totals(redis)), *scrape_families(view, rows, memory, settings)]


def exposition(families: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families)))
    return generate_latest(registry)


async def metrics_view(request: web.Request) -> web.Response:
    live = request.app[LIVE]
    await live.refresh()
    families = await collect(request.app[REDIS], live.current, request.app[CLOCK]())
    families += web_families(request.app[REQUEST_COUNTS], request.app[FEED_CACHE])
    return web.Response(body=exposition(families), headers={"Content-Type": CONTENT_TYPE})


def add_routes(routes: BoundRoutes) -> None:
    routes.add_get("/metrics", metrics_view)
