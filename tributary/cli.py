"""The ``tributary`` command: the composition root that wires ``service`` and ``workers``.

``run`` is the all-in-one (embedded Redis when no ``REDIS_URL``, a supervised web server and
worker processes); ``serve`` and ``worker`` are the separate processes for scale-out; ``poll``
polls one source now. A failure to start is one line on stderr (``tributary: ...``) and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import click
from aiohttp import web
from redis.asyncio import Redis

from service.config import Settings, config_path
from service.errors import TributaryError
from service.logs import LogFormat, configure_logging, redact
from service.store.availability import REDIS_DOWN, describe
from service.store.connect import RedisUnavailableError
from tributary.command_context import (
    Context,
    _run_with_redis,
    _split,
    config_option,
    redis_for,
    redis_target,
)
from tributary.listener import LISTEN_FD_ENV, bind_listener, inherited_listener

log = logging.getLogger("tributary")


@click.group()
@click.option(
    "--config", "config", envvar="TRIBUTARY_CONFIG", default=None, help="config file (default config/tributary.toml)"
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "json"]),
    default="auto",
    envvar="TRIBUTARY_LOG_FORMAT",
    show_default=True,
    help="auto: readable on a terminal, JSON lines otherwise",
)
@click.pass_context
def main(ctx: click.Context, config: str | None, log_level: str, log_format: str) -> None:
    """Tributary: poll feeds and news pages, publish merged feeds."""
    chosen = configure_logging(log_level, cast(LogFormat, log_format))
    ctx.obj = Context(config, log_level, chosen)


def serve_app(settings: Settings, redis_url: str, sock: socket.socket, *, announce: bool = True) -> None:
    from service import heap
    from service.web.app import create_app

    app = create_app(settings, redis_url=redis_url)
    heap.settle()
    web.run_app(
        app,
        sock=sock,
        access_log=None,
        print=lambda _msg: (
            log.info("serving on http://%s:%s", settings.server.host, settings.server.port) if announce else None
        ),
    )


@main.command()
@config_option
@click.pass_obj
def serve(obj: Context) -> None:
    """Run the web server only."""
    from tributary.supervisor import exit_with_parent

    settings = obj.settings()
    exit_with_parent()
    inherited = inherited_listener()
    sock = inherited or bind_listener(settings.server.host, settings.server.port)
    with redis_for(settings) as url:
        serve_app(settings, url, sock, announce=inherited is None)


@main.command()
@config_option
@click.option("--burst", is_flag=True, help="exit once the queue is empty")
@click.pass_obj
def worker(obj: Context, burst: bool) -> None:
    """Run one arq worker process (start several to scale out)."""
    from service import heap
    from tributary.supervisor import exit_with_parent
    from workers.settings import build_worker

    settings = obj.settings()
    exit_with_parent()
    with redis_for(settings) as url:
        try:
            worker = build_worker(settings, url, burst=burst)
            heap.settle()
            worker.run()
        except REDIS_DOWN as exc:  # lost between the start-up check and the worker's first call
            raise RedisUnavailableError(f"lost Redis at {redact(url)} while starting: {describe(exc)}") from None


@main.command()
@config_option
@click.pass_obj
def run(obj: Context) -> None:
    """All in one: Redis (embedded unless REDIS_URL), worker processes and the web server,
    restarted when they die; Ctrl-C stops them in order."""
    from tributary.first_screen import banner, summarise_first_round
    from tributary.supervisor import ChildSpec, RedisKeeper, Supervisor

    settings = obj.settings()
    config_file = config_path(obj.config).resolve()
    listener = bind_listener(settings.server.host, settings.server.port)
    with listener, redis_target(settings) as target:
        lines = banner(settings, config_file, target.url, target.note)
        if obj.log_format == "text":
            click.echo("\n".join(lines), err=True)
        else:
            log.info("%s", "; ".join(" ".join(line.split()) for line in lines))
        env = {**os.environ, "REDIS_URL": target.url, "TRIBUTARY_CONFIG": str(config_file)}
        command = [sys.executable, "-m", "tributary", "--log-level", obj.log_level, "--log-format", obj.log_format]
        children = [
            ChildSpec(
                "web",
                [*command, "serve"],
                stop_group=0,
                grace_seconds=10,
                pass_fds=(listener.fileno(),),
                env={LISTEN_FD_ENV: str(listener.fileno())},
            )
        ]
        count = settings.worker.processes
        children += [
            ChildSpec("worker" if count == 1 else f"worker-{n}", [*command, "worker"], stop_group=1)
            for n in range(1, count + 1)
        ]
        keeper = RedisKeeper(target.embedded) if target.embedded is not None else None
        stop = threading.Event()
        summary = summarise_first_round(settings, target.url, stop)
        supervisor = Supervisor(children, env, watch=keeper)
        try:
            code = supervisor.run()
        finally:
            stop.set()
            summary.join(2)
    if code:
        raise TributaryError(supervisor.failure or "a child process failed")


@main.command()
@config_option
@click.argument("source_id")
@click.pass_obj
def poll(obj: Context, source_id: str) -> None:
    """Poll one source now and print how many articles were new, updated, unchanged."""
    settings = obj.settings()
    with redis_for(settings) as url:
        settings = asyncio.run(_effective(url, settings))  # sources added at run time included
        if settings.source(source_id) is None:
            raise click.ClickException(f"no source {source_id!r} in the config")
        report = asyncio.run(_poll_once(settings, url, source_id))
    click.echo(
        f"{source_id}: {report.status}: {report.new} new, {report.updated} updated, {report.unchanged} unchanged"
    )
    if report.error:
        click.echo(f"error ({report.error_kind}): {report.error}", err=True)
        sys.exit(1)


async def _effective(redis_url: str, seed: Settings) -> Settings:
    """The config file with the sources added or removed at run time."""
    from service.store.source_registry import LiveSettings

    redis = Redis.from_url(redis_url)
    try:
        live = LiveSettings(seed, redis)
        await live.refresh(force=True)
        return live.current
    finally:
        await redis.aclose()


async def _poll_once(settings: Settings, redis_url: str, source_id: str):  # type: ignore[no-untyped-def]

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
        if added:  # a running service polls them at once; say which no merged feed shows
            _sources.announce_import(obj, [s.id for s in added])


@main.command()
@config_option
@click.argument("source_id")
@click.pass_obj
def enable(obj: Context, source_id: str) -> None:
    """Re-enable a disabled source (410 Gone, too many failures): it is due again now."""
    settings = obj.settings()
    with redis_for(settings) as url:
        if asyncio.run(_effective(url, settings)).source(source_id) is None:
            raise click.ClickException(f"no source {source_id!r} in the config")
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


# -- partner API: keys and webhooks (docs/partners.md) ------------------------------------------


@main.group()
@config_option
def keys() -> None:
    """Partner API keys: create, list, revoke."""


@keys.command("create")
@config_option
@click.argument("name")
@click.option("--feeds", default=None, help="comma-separated merged feeds the key may read (default: all)")
@click.option("--rate", type=click.IntRange(1, 100_000), default=None, help="requests per minute ([api] default)")
@click.option("--origin", "origins", multiple=True, help="a browser origin allowed to use the key (CORS); repeatable")
@click.pass_obj
def keys_create(obj: Context, name: str, feeds: str | None, rate: int | None, origins: tuple[str, ...]) -> None:
    """Create key NAME and print it (last word): only its hash is kept, it cannot be shown again."""
    from service.clock import utcnow
    from service.store.api_keys import ApiKeyError, ApiKeys

    settings = obj.settings()
    wanted = _split(feeds)
    unknown = [f for f in wanted if settings.feed(f) is None]
    if unknown:
        raise click.ClickException(f"no merged feed named {', '.join(unknown)} in the config")
    try:
        key, token = _run_with_redis(
            settings,
            lambda r: ApiKeys(r).create(name, utcnow(), feeds=wanted, rate_per_minute=rate, origins=origins),
        )
    except ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    scope = ",".join(key.feeds) or "all feeds"
    per_minute = key.rate_per_minute or settings.api.rate_per_minute
    click.echo(
        f"created key {key.name} ({scope}, {per_minute} requests/minute); send it as Authorization: Bearer {token}"
    )


@keys.command("list")
@config_option
@click.pass_obj
def keys_list(obj: Context) -> None:
    """List the keys (names, scopes, rates, origins; never the keys themselves)."""
    from service.store.api_keys import ApiKeys

    settings = obj.settings()
    for key in _run_with_redis(settings, lambda r: ApiKeys(r).all()):
        rate = key.rate_per_minute or settings.api.rate_per_minute
        origins = ",".join(key.origins) or "-"
        scope = ",".join(key.feeds) or "all"
        click.echo(f"{key.name}\tfeeds={scope}\trate={rate}/min\torigins={origins}\tcreated={key.created:%Y-%m-%d}")


@keys.command("revoke")
@config_option
@click.argument("name")
@click.pass_obj
def keys_revoke(obj: Context, name: str) -> None:
    """Revoke key NAME at once, with its webhooks."""
    from service.store.api_keys import ApiKeys
    from service.store.webhooks import WebhookStore

    async def revoke(redis: Redis) -> tuple[bool, int]:
        return await ApiKeys(redis).revoke(name), await WebhookStore(redis).remove_of_key(name)

    revoked, hooks = _run_with_redis(obj.settings(), revoke)
    if not revoked:
        raise click.ClickException(f"no key named {name!r}")
    click.echo(f"revoked key {name}" + (f" and its {hooks} webhook(s)" if hooks else ""))


@main.group()
@config_option
def webhooks() -> None:
    """Webhooks of partner API keys: add, list, remove, replay, log."""


def check_callback(url: str, allow_http: bool) -> None:
    """A callback must be https:// (http:// only with [api] webhook_allow_http), with a host and no
    credentials; where it resolves is checked at each delivery by the SSRF guard."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password or len(url) > 2048:
        raise click.ClickException(f"the callback must be an {' or '.join(schemes)} URL with a host, no credentials")


@webhooks.command("add")
@config_option
@click.argument("key_name")
@click.argument("url")
@click.option("--feed", default=None, help="only changes of this merged feed (within the key's scope)")
@click.pass_obj
def webhooks_add(obj: Context, key_name: str, url: str, feed: str | None) -> None:
    """POST change records from now on to URL for key KEY_NAME; prints the signing secret (last word)."""
    from service.clock import utcnow
    from service.store.api_keys import ApiKeys
    from service.store.changelog import ChangeLog
    from service.store.webhooks import Webhook, WebhookStore

    settings = obj.settings()
    check_callback(url, settings.api.webhook_allow_http)
    if feed is not None and settings.feed(feed) is None:
        raise click.ClickException(f"no merged feed named {feed!r} in the config")

    async def add(redis: Redis) -> Webhook:
        key = await ApiKeys(redis).get(key_name)
        if key is None:
            raise click.ClickException(f"no key named {key_name!r}")
        if feed is not None and key.feeds and feed not in key.feeds:
            raise click.ClickException(f"key {key_name!r} may not read the feed {feed!r}")
        head = await ChangeLog(redis).head()
        return await WebhookStore(redis).add(key_name, url, str(head), utcnow(), feed=feed)

    hook = _run_with_redis(settings, add)
    click.echo(f"added webhook {hook.id} for key {key_name}; verify deliveries with the signing secret {hook.secret}")


@webhooks.command("list")
@config_option
@click.pass_obj
def webhooks_list(obj: Context) -> None:
    """List webhooks: id, key, feed, callback host, last sequence number, state."""
    from service.store.webhooks import WebhookStore

    for hook in _run_with_redis(obj.settings(), lambda r: WebhookStore(r).all()):
        state = f"paused until {hook.paused_until:%Y-%m-%d %H:%M}" if hook.paused_until else "active"
        host = urlsplit(hook.url).hostname
        click.echo(f"{hook.id}\tkey={hook.key}\tfeed={hook.feed or 'all'}\thost={host}\tseq={hook.seq}\t{state}")


@webhooks.command("remove")
@config_option
@click.argument("webhook_id")
@click.pass_obj
def webhooks_remove(obj: Context, webhook_id: str) -> None:
    """Stop and forget a webhook."""
    from service.store.webhooks import WebhookStore

    if not _run_with_redis(obj.settings(), lambda r: WebhookStore(r).remove(webhook_id)):
        raise click.ClickException(f"no webhook {webhook_id!r}")
    click.echo(f"removed webhook {webhook_id}")


@webhooks.command("replay")
@config_option
@click.argument("webhook_id")
@click.option("--cursor", default=None, help="resend every record after this change-log cursor")
@click.option("--from-oldest", is_flag=True, help="resend every record the log still keeps")
@click.pass_obj
def webhooks_replay(obj: Context, webhook_id: str, cursor: str | None, from_oldest: bool) -> None:
    """Move a webhook back: the records after the position are delivered again, with new sequence
    numbers (receivers de-duplicate by each record's cursor)."""
    from service.api.cursors import CursorError, CursorSigner
    from service.store.api_keys import cursor_secret
    from service.store.changelog import ChangeLog
    from service.store.webhooks import Webhook, WebhookStore

    if (cursor is None) == (not from_oldest):
        raise click.ClickException("give exactly one of --cursor CURSOR and --from-oldest")
    settings = obj.settings()

    async def replay(redis: Redis) -> Webhook | None:
        horizon = await ChangeLog(redis).horizon()
        position = horizon
        if cursor is not None:
            try:
                position = CursorSigner(await cursor_secret(redis, settings.api.cursor_secret)).open_changes(cursor)
            except CursorError as exc:
                raise click.ClickException(f"cursor: {exc}") from exc
            if position < horizon:
                raise click.ClickException("that cursor is older than the change log's retention")
        return await WebhookStore(redis).update(webhook_id, None, position=str(position), paused_until=None, failures=0)

    hook = _run_with_redis(settings, replay)
    if hook is None:
        raise click.ClickException(f"no webhook {webhook_id!r}")
    click.echo(f"webhook {webhook_id} rewound to {hook.position}; the worker delivers from there")


@webhooks.command("log")
@config_option
@click.argument("webhook_id")
@click.option("-n", "count", type=click.IntRange(1, 200), default=20, show_default=True)
@click.pass_obj
def webhooks_log(obj: Context, webhook_id: str, count: int) -> None:
    """The newest deliveries of a webhook: sequence number, try, outcome, HTTP status, records."""
    from service.store.webhooks import WebhookStore

    for d in _run_with_redis(obj.settings(), lambda r: WebhookStore(r).deliveries(webhook_id, count)):
        status = d.status or d.error or "-"
        click.echo(
            f"{d.at:%Y-%m-%d %H:%M:%S}\tseq={d.seq}\ttry={d.attempt}\t{d.outcome}\t{status}\trecords={d.records}"
        )


def entrypoint() -> None:
    try:
        main()
    except TributaryError as exc:
        raise SystemExit(f"tributary: {exc}") from None


# Operators' verbs (status, sources, dead letters, healthcheck) live in tributary/commands/; they register on `main`.
from tributary.commands import dead as _dead  # noqa: E402
from tributary.commands import healthcheck as _healthcheck  # noqa: E402
from tributary.commands import show as _status  # noqa: E402
from tributary.commands import sources as _sources  # noqa: E402

for _module in (_status, _sources, _dead, _healthcheck):
    _module.register(main)
