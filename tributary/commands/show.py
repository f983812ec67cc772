"""``tributary status``, ``tributary source ID``: what the service is doing, and why a source waits."""

from __future__ import annotations

import json
from datetime import datetime

import click
from redis.asyncio import Redis

from service.clock import utcnow
from service.config import Settings
from service.models import PollRecord
from service.status import Health, ago, push_facts, push_marker
from service.store.overview import Overview, SourceRow, overview, source_rows
from service.store.source_registry import LiveSettings
from service.store.source_state import SourceStates
from tributary.command_context import Context, _run_with_redis, config_option


async def effective_settings(redis: Redis, seed: Settings) -> Settings:
    """The config file with the run-time sources (what the running service polls)."""
    live = LiveSettings(seed, redis)
    await live.refresh(force=True)
    return live.current


def overview_lines(view: Overview) -> list[str]:
    counts = ", ".join(f"{h.value} {view.health.get(h, 0)}" for h in Health)
    push = ", ".join(f"{status.value} {n}" for status, n in sorted(view.push.items())) or "none"
    beats = (
        "; ".join(
            f"{w.host} pid {w.pid} beat {w.age(view.now).total_seconds():.0f}s ago"
            f"{'' if w.fresh(view.now) else ' (stale)'}, {w.jobs_running} running"
            for w in view.workers
        )
        or "no worker beat"
    )
    return [
        f"sources: {sum(view.health.values())} ({counts})",
        f"push subscriptions: {push}",
        f"ingest: {view.ingest_length} queued, {view.ingest_pending} pending, oldest {view.ingest_oldest_seconds:.0f}s",
        f"jobs queued: {view.queue_depth}; late sources: {view.late_sources}"
        f" (max lag {view.late_max_seconds:.0f}s); paused hosts: {view.paused_hosts}",
        f"dead letters: {view.dead_letters.get('job', 0)} jobs, {view.dead_letters.get('ingest', 0)} ingest,"
        f" {view.dead_letters.get('article', 0)} articles",
        f"workers: {beats}",
    ]


def row_line(row: SourceRow, now: datetime) -> str:
    state = row.state
    status = str(state.last_status or "-")
    error = (
        f"  {state.last_error_kind}: {state.last_error}" if state.last_error and row.health is Health.FAILING else ""
    )
    return (
        f"{row.id:<24} {row.health.value:<8} {status:>4} {push_marker(state.push, now):<14}"
        f" success {ago(state.last_success, now):<12}"
        f" next {ago(state.next_poll, now):<14} every {row.source.interval_seconds}s"
        f"  24h {row.articles_24h:>3}  ({row.why}){error}"
    )


def poll_line(record: PollRecord) -> str:
    status = str(record.status or "-")
    error = f"  {record.error}" if record.error else ""
    return (
        f"{record.at:%Y-%m-%d %H:%M:%S}  {record.outcome:<14} {status:>4}  {record.duration_ms:>6} ms"
        f"  {record.bytes:>9} B  {record.new:>3} new{error}"
    )


def register(main: click.Group) -> None:
    @main.command()
    @config_option
    @click.option("--json", "as_json", is_flag=True, help="print JSON")
    @click.pass_obj
    def status(obj: Context, as_json: bool) -> None:
        """The service at a glance: sources by health, queues, late sources, dead letters, workers."""

        async def gather(redis: Redis) -> Overview:
            settings = await effective_settings(redis, obj.settings())
            now = utcnow()
            return await overview(redis, await source_rows(redis, settings.sources, now), now)

        view = _run_with_redis(obj.settings(), gather)
        if as_json:
            click.echo(json.dumps(view.as_json(), indent=1))
            return
        for line in overview_lines(view):
            click.echo(line)

    @main.command()
    @config_option
    @click.argument("source_id")
    @click.option("-n", "count", type=click.IntRange(1, 50), default=20, show_default=True, help="polls shown")
    @click.option("--json", "as_json", is_flag=True, help="print JSON")
    @click.pass_obj
    def source(obj: Context, source_id: str, count: int, as_json: bool) -> None:
        """One source: its state, why it waits, its recent polls."""

        async def gather(redis: Redis) -> tuple[SourceRow | None, list[PollRecord]]:
            settings = await effective_settings(redis, obj.settings())
            config = settings.source(source_id)
            if config is None:
                return None, []
            [row] = await source_rows(redis, [config], utcnow())
            return row, await SourceStates(redis).history(source_id, count)

        row, polls = _run_with_redis(obj.settings(), gather)
        if row is None:
            raise click.ClickException(f"no source {source_id!r}")
        if as_json:
            data = {**row.as_json(), "polls": [p.model_dump(mode="json") for p in polls]}
            click.echo(json.dumps(data, indent=1))
            return
        now = utcnow()
        state = row.state
        click.echo(f"{row.id}: {row.health.value}  {state.current_url or row.source.url}")
        click.echo(f"  last poll {ago(state.last_poll, now)}, last success {ago(state.last_success, now)}")
        if state.last_error:
            click.echo(f"  last error ({state.last_error_kind}, HTTP {state.last_status or '-'}): {state.last_error}")
            click.echo(f"  {state.consecutive_failures} failure(s) in a row")
        if state.disabled:
            click.echo(f"  disabled: {state.disabled_reason} (tributary enable {row.id})")
        click.echo(f"  next poll {ago(state.next_poll, now)}: {row.why}")
        click.echo(f"  interval {row.source.interval_seconds}s; {row.articles_24h} article(s) in 24 h")
        if state.push is not None:
            click.echo("  push: " + "; ".join(f"{name} {value}" for name, value in push_facts(state.push, now)))
        click.echo(f"  recent polls ({len(polls)}):")
        for record in polls:
            click.echo("    " + poll_line(record))
