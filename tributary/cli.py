"""The ``tributary`` command: the composition root that wires ``service`` and ``workers``.

``run`` is the all-in-one (embedded Redis when no ``REDIS_URL``, worker processes, web server);
``serve`` and ``worker`` are the separate processes for scale-out; ``poll`` polls one source now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
from aiohttp import web

from service.config import Settings, load_settings
from service.errors import ConfigError, TributaryError
from service.store.embedded_redis import resolve_redis_url

log = logging.getLogger("tributary")


def redact(url: str) -> str:
    """A Redis URL fit for logs: never print its password."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().level > logging.DEBUG:
        # arq logs every job start and end; our own poll summary says what matters.
        logging.getLogger("arq.worker").setLevel(logging.WARNING)


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[str]:
    """``REDIS_URL``, or the data dir's embedded Redis (reused if up, else started and stopped)."""
    url, owned = resolve_redis_url(settings.redis_url, settings.storage.data_dir)
    log.info("redis: %s%s", redact(url), " (embedded, started here)" if owned else "")
    try:
        yield url
    finally:
        if owned is not None:
            owned.stop()


class Context:
    def __init__(self, config: str | None):
        self.config = config

    def settings(self) -> Settings:
        try:
            return load_settings(self.config)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group()
@click.option(
    "--config", "config", envvar="TRIBUTARY_CONFIG", default=None, help="config file (default config/tributary.toml)"
)
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str) -> None:
    """Tributary: poll feeds and news pages, publish merged feeds."""
    configure_logging(log_level)
    ctx.obj = Context(config)


def config_option(f):  # type: ignore[no-untyped-def]
    """Accept ``--config`` after the verb too (``tributary run --config PATH``)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.find_object(Context).config = value

    return click.option("--config", callback=remember, expose_value=False, help="config file")(f)


def serve_app(settings: Settings, redis_url: str) -> None:
    from service.web.app import create_app

    web.run_app(
        create_app(settings, redis_url=redis_url),
        host=settings.server.host,
        port=settings.server.port,
        access_log=None,
        print=lambda msg: log.info("serving on http://%s:%s", settings.server.host, settings.server.port),
    )


@main.command()
@config_option
@click.pass_obj
def serve(obj: Context) -> None:
    """Run the web server only."""
    settings = obj.settings()
    with redis_for(settings) as url:
        serve_app(settings, url)


@main.command()
@config_option
@click.option("--burst", is_flag=True, help="exit once the queue is empty")
@click.pass_obj
def worker(obj: Context, burst: bool) -> None:
    """Run one arq worker process (start several to scale out)."""
    from workers.settings import build_worker

    settings = obj.settings()
    with redis_for(settings) as url:
        build_worker(settings, url, burst=burst).run()


@main.command()
@config_option
@click.pass_obj
def run(obj: Context) -> None:
    """All in one: Redis (embedded unless REDIS_URL), worker processes and the web server."""
    settings = obj.settings()
    with redis_for(settings) as url:
        env = {**os.environ, "REDIS_URL": url}
        if obj.config:
            env["TRIBUTARY_CONFIG"] = obj.config
        workers = [
            subprocess.Popen([sys.executable, "-m", "tributary", "worker"], env=env)
            for _ in range(settings.worker.processes)
        ]
        try:
            serve_app(settings, url)
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()


@main.command()
@config_option
@click.argument("source_id")
@click.pass_obj
def poll(obj: Context, source_id: str) -> None:
    """Poll one source now and print how many articles were new, updated, unchanged."""
    settings = obj.settings()
    source = settings.source(source_id)
    if source is None:
        raise click.ClickException(f"no source {source_id!r} in the config")
    with redis_for(settings) as url:
        report = asyncio.run(_poll_once(settings, url, source_id))
    click.echo(
        f"{source_id}: {report.status}: {report.new} new, {report.updated} updated, {report.unchanged} unchanged"
    )
    if report.error:
        click.echo(f"error ({report.error_kind}): {report.error}", err=True)
        sys.exit(1)


async def _poll_once(settings: Settings, redis_url: str, source_id: str):  # type: ignore[no-untyped-def]
    from redis.asyncio import Redis

    from service.clock import utcnow
    from service.store.articles import Store
    from workers.fetch.client import new_session
    from workers.poll.pipeline import poll_source
    from workers.resources import Resources
    from workers.tasks import ingest_queued

    redis = Redis.from_url(redis_url)
    session = new_session(settings.fetch)
    try:
        store = Store(redis, settings)
        res = Resources(settings, redis, store, session, utcnow)
        report = await poll_source(res, settings.source(source_id))  # type: ignore[arg-type]
        await ingest_queued(res, f"cli-{os.getpid()}")
        return report
    finally:
        await session.close()
        await redis.aclose()


@main.command("import-opml")
@config_option
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="print the sources that would be added; change nothing")
@click.pass_obj
def import_opml_command(obj: Context, opml_file: Path, dry_run: bool) -> None:
    """Add the feeds of a reader's OPML export as [[sources]] of the config file."""
    from service.config import config_path
    from tributary.opml_import import import_opml

    target = config_path(obj.config)
    try:
        added, skipped, toml_text = import_opml(opml_file, target, dry_run=dry_run)
    except TributaryError as exc:
        raise click.ClickException(str(exc)) from exc
    for reason in skipped:
        click.echo(f"skipped {reason}", err=True)
    if dry_run:
        click.echo(toml_text, nl=False)
        click.echo(f"would add {len(added)} sources to {target}", err=True)
    else:
        click.echo(f"added {len(added)} sources to {target}" + (f": {', '.join(s.id for s in added)}" if added else ""))


@main.command()
@config_option
@click.argument("source_id")
@click.pass_obj
def enable(obj: Context, source_id: str) -> None:
    """Re-enable a disabled source (410 Gone, too many failures): it is due again now."""
    settings = obj.settings()
    if settings.source(source_id) is None:
        raise click.ClickException(f"no source {source_id!r} in the config")
    with redis_for(settings) as url:
        was = asyncio.run(_enable(url, source_id))
    click.echo(f"{source_id}: enabled" + (f" (was disabled: {was})" if was else " (was not disabled)"))


async def _enable(redis_url: str, source_id: str) -> str | None:
    from redis.asyncio import Redis

    from service.clock import utcnow
    from service.store.source_state import SourceStates

    redis = Redis.from_url(redis_url)
    try:
        return await SourceStates(redis).enable(source_id, utcnow())
    finally:
        await redis.aclose()


def entrypoint() -> None:
    try:
        main()
    except TributaryError as exc:
        raise SystemExit(f"tributary: {exc}") from exc
