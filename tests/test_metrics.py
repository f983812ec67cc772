"""``/metrics`` after an end-to-end ingest: a real arq worker polls local sources, then the web
process is scraped and the figures are read back with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from service.store.worker_counters import Counters, parse_series, read_totals, series
from service.web.app import create_app
from service.web.metrics_endpoint import capped
from tests.test_e2e import e2e_settings, run_worker


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert matching, f"no sample {name} {labels}"
    return sum(matching)


async def test_metrics_after_an_ingest(redis, redis_url, feed_server, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(feed_server)
    client = await aiohttp_client(create_app(settings, redis=redis, clock=clock))
    await run_worker(settings, redis_url, clock)
    assert (await client.get("/feeds/all.json")).status == 200
    assert (await client.get("/feeds/all.json")).status == 200  # served from the render cache
    assert (await client.get("/nope")).status == 404

    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(await response.text())
    assert all(s.name.startswith("tributary_") for s in found)

    # Worker counters, summed through Redis: three good sources read, one broken.
    assert value(found, "tributary_polls_total", outcome="modified") == 3
    broken = [s for s in found if s.name == "tributary_polls_total" and s.labels["outcome"] in {"parse", "not_a_feed"}]
    assert [s.value for s in broken] == [1]
    assert value(found, "tributary_articles_total", outcome="new") == 7
    assert value(found, "tributary_fetch_bytes_total") > 1000
    assert value(found, "tributary_fetch_duration_seconds_count") == 4
    assert value(found, "tributary_fetch_duration_seconds_bucket", le="+Inf") == 4
    assert value(found, "tributary_jobs_total", function="poll_batch", status="complete") == 1  # one batch of 4

    # Read at scrape time.
    # The fixtures' items are from 2023: answering, but silent for far longer than their rhythm.
    assert value(found, "tributary_sources", health="ok") + value(found, "tributary_sources", health="stale") == 3
    assert value(found, "tributary_sources", health="failing") == 1
    assert value(found, "tributary_ingest_stream_length") == 0
    assert value(found, "tributary_arq_queue_depth") == 0
    assert value(found, "tributary_late_sources") == 0
    assert value(found, "tributary_redis_memory_bytes") > 0
    assert value(found, "tributary_source_consecutive_failures", source="broken-src") == 1
    assert value(found, "tributary_source_last_success_timestamp_seconds", source="rss-src") == clock().timestamp()

    # This web process's own counts.
    assert value(found, "tributary_http_requests_total", route="/feeds/{name}.{fmt}", status="200") == 2
    assert value(found, "tributary_http_requests_total", route="other", status="404") == 1
    assert value(found, "tributary_render_cache_total", result="hit") >= 1
    assert value(found, "tributary_render_cache_total", result="miss") == 1

    # A second run adds to the same totals (304s now), and a source due but unclaimed is late.
    clock.advance(61)
    await run_worker(settings, redis_url, clock)
    clock.advance(3600)  # nobody polls: every source is late by about an hour
    again = samples(await (await client.get("/metrics")).text())
    assert value(again, "tributary_polls_total", outcome="not_modified") == 3
    assert value(again, "tributary_late_sources") == 4
    assert 3500 <= value(again, "tributary_late_sources_max_lag_seconds") <= 3600  # due 60 s after the poll


async def test_counters_flush_adds_to_shared_totals(redis) -> None:  # type: ignore[no-untyped-def]
    one, two = Counters(), Counters()
    one.inc("polls_total", outcome="modified")
    two.inc("polls_total", 2, outcome="modified")
    one.observe("fetch_duration_seconds", 0.3)
    await one.flush(redis)
    await two.flush(redis)
    await two.flush(redis)  # nothing pending: nothing added
    totals = await read_totals(redis)
    assert totals[("polls_total", (("outcome", "modified"),))] == 3
    assert ("fetch_duration_seconds_bucket", (("le", "0.25"),)) not in totals  # 0.3 s is above that bound
    assert totals[("fetch_duration_seconds_bucket", (("le", "0.5"),))] == 1
    assert totals[("fetch_duration_seconds_count", ())] == 1
    assert parse_series(series("jobs_total", {"status": "failed", "function": "poll"})) == (
        "jobs_total",
        (("function", "poll"), ("status", "failed")),
    )


def test_per_source_series_are_capped_to_the_worst() -> None:
    from datetime import UTC, datetime

    from service.config import SourceConfig
    from service.models import SourceState
    from service.status import Health
    from service.store.overview import SourceRow

    def row(n: int, failures: int, success_hour: int | None) -> SourceRow:
        success = datetime(2026, 11, 25, success_hour, tzinfo=UTC) if success_hour is not None else None
        state = SourceState(consecutive_failures=failures, last_success=success)
        return SourceRow(
            SourceConfig(id=f"s{n}", url="http://x/"), state, Health.OK, 0, "", datetime(2026, 11, 25, tzinfo=UTC)
        )

    rows = [row(0, 0, 12), row(1, 5, 1), row(2, 0, None), row(3, 9, 3), row(4, 0, 2)]
    assert capped(rows, 10) == rows
    assert [r.id for r in capped(rows, 3)] == ["s3", "s1", "s2"]  # most failures, then never succeeded
