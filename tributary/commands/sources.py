"""``tributary sources``: list, add, remove, pause and resume sources of a running service, and
``tributary reload``. The config file stays the seed; run-time changes live in Redis
(service/store/source_registry.py) and every process picks them up within about a second."""

from __future__ import annotations

import json
import sys

import click
from redis.asyncio import Redis

from service.clock import utcnow
from service.config import Settings, load_settings
from service.errors import ConfigError, SourceError
from service.status import Health
from service.store.articles import Store
from service.store.overview import SourceRow, source_rows
from service.store.source_registry import SourceRegistry, unselected
from service.store.source_state import SourceStates
from tributary.command_context import Context, _run_with_redis, _split, config_option
from tributary.commands.show import effective_settings, row_line


def warn_unselected(settings: Settings, source_ids: list[str]) -> None:
    orphans = unselected(settings, source_ids)
    if orphans:
        click.echo(
            f"warning: no merged feed shows {', '.join(orphans)}: add their tags to a [[feeds]] entry"
            " (tags = [...]) or list them (sources = [...])",
            err=True,
        )


async def _known(redis: Redis, seed: Settings, source_id: str) -> Settings:
    settings = await effective_settings(redis, seed)
    if settings.source(source_id) is None:
        raise click.ClickException(f"no source {source_id!r}")
    return settings


def pause_command(obj: Context, source_id: str) -> None:
    async def pause(redis: Redis) -> bool:
        await _known(redis, obj.settings(), source_id)
        return await SourceStates(redis).pause(source_id)

    changed = _run_with_redis(obj.settings(), pause)
    click.echo(f"{source_id}: paused" + ("" if changed else " (was paused already)"))


def resume_command(obj: Context, source_id: str) -> None:
    async def resume(redis: Redis) -> bool:
        await _known(redis, obj.settings(), source_id)
        return await SourceStates(redis).resume(source_id, utcnow())

    changed = _run_with_redis(obj.settings(), resume)
    click.echo(f"{source_id}: resumed, due now" if changed else f"{source_id}: was not paused")


def register(main: click.Group) -> None:
    @main.group(invoke_without_command=True)
    @config_option
    @click.option("--failing", is_flag=True, help="only failing (and disabled) sources")
    @click.option("--stale", is_flag=True, help="only stale sources")
    @click.option("--json", "as_json", is_flag=True, help="print JSON")
    @click.pass_context
    def sources(ctx: click.Context, failing: bool, stale: bool, as_json: bool) -> None:
        """List sources (state, last status, next poll and why); or add, remove, pause, resume one."""
        if ctx.invoked_subcommand is not None:
            return
        obj: Context = ctx.obj

        async def rows(redis: Redis) -> list[SourceRow]:
            return await source_rows(redis, (await effective_settings(redis, obj.settings())).sources, utcnow())

        wanted: set[Health] = set()
        if failing:
            wanted |= {Health.FAILING, Health.DISABLED}
        if stale:
            wanted.add(Health.STALE)
        found = [r for r in _run_with_redis(obj.settings(), rows) if not wanted or r.health in wanted]
        if as_json:
            click.echo(json.dumps([r.as_json() for r in found], indent=1))
            return
        now = utcnow()
        for row in found:
            click.echo(row_line(row, now))

    @sources.command("add")
    @config_option
    @click.argument("url")
    @click.option("--id", "source_id", default=None, help="the source's id (default: from the feed's title)")
    @click.option("--tags", default=None, help="comma-separated tags (merged feeds select sources by tag)")
    @click.option("--interval", type=click.IntRange(1), default=None, help="interval_seconds (default 600)")
    @click.pass_obj
    def sources_add(obj: Context, url: str, source_id: str | None, tags: str | None, interval: int | None) -> None:
        """Find the feed of URL (the page itself, its <link rel="alternate">, common paths) and add it."""
        from workers.fetch.client import new_session
        from workers.pages.discover import discover_feed, new_source

        seed = obj.settings()

        async def add(redis: Redis) -> tuple[str, str, Settings]:
            settings = await effective_settings(redis, seed)
            session = new_session(settings.fetch)
            try:
                found = await discover_feed(session, url, settings.fetch)
            except SourceError as exc:
                raise click.ClickException(f"{url}: {exc.kind}: {exc.message}") from exc
            finally:
                await session.close()
            try:
                source = new_source(found, settings, source_id=source_id, tags=_split(tags), interval=interval)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
            await SourceRegistry(redis).add(source, utcnow())
            return source.id, f"{found.url} (found by {found.how})", await effective_settings(redis, seed)

        added, where, settings = _run_with_redis(seed, add)
        click.echo(f"added {added}: {where}; due now")
        warn_unselected(settings, [added])

    @sources.command("remove")
    @config_option
    @click.argument("source_id")
    @click.option("--purge", is_flag=True, help="also remove its articles (partners see tombstones)")
    @click.pass_obj
    def sources_remove(obj: Context, source_id: str, purge: bool) -> None:
        """Stop polling a source; its articles stay unless --purge."""

        async def remove(redis: Redis) -> int:
            settings = await _known(redis, obj.settings(), source_id)
            removed = await Store(redis, settings).remove_source_articles(source_id, utcnow()) if purge else 0
            await SourceRegistry(redis).remove(source_id)
            return removed

        removed = _run_with_redis(obj.settings(), remove)
        click.echo(f"removed {source_id}" + (f" and {removed} article(s)" if purge else "; its articles stay"))

    @sources.command("pause")
    @config_option
    @click.argument("source_id")
    @click.pass_obj
    def sources_pause(obj: Context, source_id: str) -> None:
        """Take a source off the schedule until resumed."""
        pause_command(obj, source_id)

    @sources.command("resume")
    @config_option
    @click.argument("source_id")
    @click.pass_obj
    def sources_resume(obj: Context, source_id: str) -> None:
        """Put a paused source back on the schedule, due now."""
        resume_command(obj, source_id)

    @main.command("pause")
    @config_option
    @click.argument("source_id")
    @click.pass_obj
    def pause(obj: Context, source_id: str) -> None:
        """Take a source off the schedule until resumed (same as `sources pause`)."""
        pause_command(obj, source_id)

    @main.command("resume")
    @config_option
    @click.argument("source_id")
    @click.pass_obj
    def resume(obj: Context, source_id: str) -> None:
        """Put a paused source back on the schedule (same as `sources resume`)."""
        resume_command(obj, source_id)

    @main.command("reload")
    @config_option
    @click.pass_obj
    def reload(obj: Context) -> None:
        """Have every running process re-read the config file (like SIGHUP); state is kept."""
        try:
            settings = load_settings(obj.config)  # refuse to announce a file that does not load
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        version = _run_with_redis(settings, lambda r: SourceRegistry(r).announce())
        click.echo(f"reload announced (sources version {version}); processes pick it up within a second")


def announce_import(obj: Context, added: list[str]) -> None:
    """``import-opml`` into a running service: schedule the new sources now, announce the change,
    and warn about those no merged feed shows."""

    async def announce(redis: Redis) -> Settings:
        settings = await effective_settings(redis, load_settings(obj.config))
        states = SourceStates(redis)
        now = utcnow()
        chunks = _chunks(added, 20)
        with click.progressbar(chunks, label=f"scheduling {len(added)} sources", file=sys.stderr) as bar:
            for chunk in bar:
                await states.schedule_new(chunk, now)
        await SourceRegistry(redis).announce()
        return settings

    settings = _run_with_redis(obj.settings(), announce)
    warn_unselected(settings, added)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
