"""Operating a running service without a restart: sources added (with feed discovery), removed,
paused and resumed at run time; the config file re-read; import-opml into a running service;
dead letters; the status commands. Real CLI, real Redis, real arq workers, local servers only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from service import keys
from service.clock import utcnow
from service.config import SourceConfig, load_settings, settings_from_dict
from service.errors import ErrorKind, FetchError
from service.models import PushStatus, SourceState
from service.store.articles import Store
from service.store.dead_letters import DeadLetters
from service.store.push_state import PushTransition
from service.store.source_registry import LiveSettings, SourceRegistry, effective, unselected
from service.store.source_state import SourceStates
from service.web.app import create_app
from tests.conftest import DATA
from tests.feedserver import FeedServer
from tests.test_e2e import run_worker
from tributary.cli import main
from workers.fetch.client import new_session
from workers.pages.discover import NoFeedFound, alternate_links, discover_feed
from workers.settings import build_worker

RSS = (DATA / "e2e" / "news.rss").read_bytes()
SITE = """<!DOCTYPE html><html><head><title>Site</title>
<link rel="alternate" type="application/rss+xml" title="News" href="/news.rss">
<link rel="stylesheet" href="/s.css"></head><body>hello</body></html>"""


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    config = tmp_path / "tributary.toml"
    config.write_text(
        f"""[fetch]
allow_private_networks = true
jitter_fraction = 0
[storage]
data_dir = "{tmp_path / "data"}"
[[sources]]
id = "seed"
url = "{url}"
tags = ["news"]
adaptive = false
{extra}
[[feeds]]
name = "news"
title = "News"
tags = ["news"]
"""
    )
    return config


async def cli(redis_url: str, config: Path, *args: str) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*args[:1], "--config", str(config), *args[1:]], env={"REDIS_URL": redis_url}
    )


# -- discovery ------------------------------------------------------------------------------------


def test_alternate_links_in_page_order_absolute() -> None:
    page = b"""<html><head><link rel="alternate" type="application/atom+xml" href="atom.xml">
    <link rel="Alternate" type="application/rss+xml; charset=utf-8" href="https://other.example/rss">
    <link rel="alternate" type="text/html" href="/fr/"><link rel="alternate" type="application/rss+xml" href="javascript:x">
    </head></html>"""
    assert alternate_links(page, "http://site.example/blog/") == [
        "http://site.example/blog/atom.xml",
        "https://other.example/rss",
    ]
    assert alternate_links(b"", "http://x/") == []


async def test_discovery_from_a_site_page_then_common_paths(feed_server: FeedServer) -> None:
    settings = settings_from_dict({"fetch": {"allow_private_networks": True, "timeout_seconds": 5}})
    session = new_session(settings.fetch)
    try:
        feed_server.set("/", SITE, content_type="text/html")
        feed_server.set("/news.rss", RSS, content_type="application/rss+xml")
        found = await discover_feed(session, feed_server.url("/"), settings.fetch)
        assert (found.url, found.how) == (feed_server.url("/news.rss"), '<link rel="alternate">')

        direct = await discover_feed(session, feed_server.url("/news.rss"), settings.fetch)
        assert direct.how == "the address itself" and direct.title

        feed_server.set("/plain", "<html><head></head><body>no links</body></html>", content_type="text/html")
        del feed_server.routes["/news.rss"]
        feed_server.set("/feed.xml", RSS, content_type="application/rss+xml")
        fallback = await discover_feed(session, feed_server.url("/plain"), settings.fetch)
        assert (fallback.url, fallback.how) == (feed_server.url("/feed.xml"), "common path")

        del feed_server.routes["/feed.xml"]
        with pytest.raises(NoFeedFound):
            await discover_feed(session, feed_server.url("/plain"), settings.fetch)
    finally:
        await session.close()


async def test_discovery_goes_through_the_ssrf_guard(feed_server: FeedServer) -> None:
    settings = settings_from_dict({})  # private networks refused, as in production
    session = new_session(settings.fetch)
    try:
        feed_server.set("/", SITE, content_type="text/html")
        with pytest.raises(FetchError) as refused:
            await discover_feed(session, feed_server.url("/"), settings.fetch)
        assert refused.value.kind is ErrorKind.BLOCKED
    finally:
        await session.close()


# -- run-time sources -----------------------------------------------------------------------------


def test_the_overlay_over_the_seed() -> None:
    seed = settings_from_dict(
        {
            "sources": [{"id": "a", "url": "http://a/", "tags": ["x"]}, {"id": "b", "url": "http://b/"}],
            "feeds": [{"name": "f", "title": "F", "sources": ["b"], "tags": ["x"]}],
        }
    )
    from service.store.source_registry import Overlay

    added = SourceConfig(id="c", url="http://c/", tags=["x"])
    changed = SourceConfig(id="a", url="http://a2/")
    result = effective(seed, Overlay({"c": added, "a": changed}, frozenset({"b"})))
    assert [s.id for s in result.sources] == ["a", "c"] and result.source("a").url == "http://a2/"  # type: ignore[union-attr]
    assert result.feeds[0].sources == []  # a removed source leaves the feeds that named it
    assert result.feeds_of_source("c") == ("f",) and unselected(result, ["a", "c"]) == ["a"]


async def test_a_source_added_at_run_time_is_polled_without_a_restart(
    redis, redis_url, feed_server: FeedServer, tmp_path: Path, clock
) -> None:  # type: ignore[no-untyped-def]
    seed_url = feed_server.set(
        "/seed.rss", RSS.replace(b"<guid", b"<guid>seed-</guid><x"), content_type="application/rss+xml"
    )
    config = write_config(tmp_path, seed_url)
    feed_server.set("/", SITE, content_type="text/html")
    feed_server.set("/news.rss", RSS, content_type="application/rss+xml")

    added = await cli(redis_url, config, "sources", "add", feed_server.url("/"), "--tags", "news", "--interval", "60")
    assert added.exit_code == 0, added.output
    assert "found by <link" in added.output and "warning" not in added.output
    source_id = added.output.split()[1].rstrip(":")

    # A worker started from the file alone polls the new source: the overlay is in Redis.
    clock.now = utcnow()  # the CLI scheduled it on the real clock
    await run_worker(load_settings(config), redis_url, clock)
    assert feed_server.seen("/news.rss")
    store = Store(redis, effective(load_settings(config), await SourceRegistry(redis).overlay()))
    assert await store.article_count(source_id) > 0
    assert await store.feed_count("news") > 0  # its tag puts it in the merged feed

    listed = await cli(redis_url, config, "sources", "--json")
    rows = {row["id"]: row for row in json.loads(listed.output)}
    assert rows[source_id]["interval_seconds"] == 60 and rows[source_id]["last_status"] == 200

    shown = await cli(redis_url, config, "source", source_id)
    assert shown.exit_code == 0 and "recent polls (1)" in shown.output and "modified" in shown.output

    polled = await cli(redis_url, config, "poll", source_id)  # the existing verbs see run-time sources too
    assert polled.exit_code == 0, polled.output

    duplicate = await cli(redis_url, config, "sources", "add", feed_server.url("/news.rss"), "--id", source_id)
    assert duplicate.exit_code != 0 and "exists already" in duplicate.output

    orphan = await cli(redis_url, config, "sources", "add", feed_server.url("/news.rss"), "--id", "orphan")
    assert orphan.exit_code == 0 and "warning: no merged feed shows orphan" in orphan.output

    removed = await cli(redis_url, config, "sources", "remove", source_id, "--purge")
    assert removed.exit_code == 0 and "article(s)" in removed.output, removed.output
    assert await store.article_count(source_id) == 0
    assert await redis.zscore(keys.SCHEDULE, source_id) is None
    assert source_id not in (await cli(redis_url, config, "sources")).output


async def test_pause_resume_and_status(redis, redis_url, feed_server: FeedServer, tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, feed_server.set("/seed.rss", RSS, content_type="application/rss+xml"))
    await run_worker(load_settings(config), redis_url, clock)

    paused = await cli(redis_url, config, "pause", "seed")
    assert paused.exit_code == 0 and "seed: paused" in paused.output
    assert (await SourceStates(redis).get("seed")).paused
    again = await cli(redis_url, config, "sources", "pause", "seed")
    assert "was paused already" in again.output
    assert "paused by an operator" in (await cli(redis_url, config, "source", "seed")).output
    status = json.loads((await cli(redis_url, config, "status", "--json")).output)
    assert status["sources"]["paused"] == 1 and status["dead_letters"] == {"job": 0, "ingest": 0, "article": 0}

    resumed = await cli(redis_url, config, "resume", "seed")
    assert resumed.exit_code == 0 and "resumed, due now" in resumed.output
    assert await redis.zscore(keys.SCHEDULE, "seed") is not None

    text = await cli(redis_url, config, "status")
    assert text.exit_code == 0 and text.output.startswith("sources: 1 (") and "dead letters: 0 jobs" in text.output
    assert (await cli(redis_url, config, "sources", "--failing")).output == ""
    assert (await cli(redis_url, config, "pause", "nope")).exit_code != 0


async def test_reload_rereads_the_file_and_keeps_state(
    redis, redis_url, feed_server: FeedServer, tmp_path: Path, clock
) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, feed_server.set("/seed.rss", RSS, content_type="application/rss+xml"))
    live = LiveSettings(load_settings(config), redis)
    await live.refresh(force=True)
    await run_worker(live.current, redis_url, clock)
    before = await SourceStates(redis).get("seed")

    second = feed_server.set("/second.rss", RSS, content_type="application/rss+xml")
    config.write_text(config.read_text() + f'\n[[sources]]\nid = "second"\nurl = "{second}"\ntags = ["news"]\n')
    assert not await live.refresh()  # nothing announced yet
    reloaded = await cli(redis_url, config, "reload")
    assert reloaded.exit_code == 0 and "reload announced" in reloaded.output
    assert await live.refresh() and [s.id for s in live.current.sources] == ["seed", "second"]
    assert await SourceStates(redis).get("seed") == before  # state is keyed by id: nothing lost

    config.write_text(config.read_text() + "\n[fetch2]\n")
    broken = await cli(redis_url, config, "reload")
    assert broken.exit_code != 0 and "fetch2" in broken.output  # a bad file is never announced


async def test_import_opml_into_a_running_service(redis, redis_url, tmp_path: Path, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, feed_server.set("/seed.rss", RSS, content_type="application/rss+xml"))
    version = await SourceRegistry(redis).version()
    result = await cli(redis_url, config, "import-opml", str(DATA / "opml" / "reader-export.opml"))
    assert result.exit_code == 0, result.output
    assert await SourceRegistry(redis).version() == version + 1  # running processes reload at once
    added = load_settings(config).sources[1:]
    scheduled = await SourceStates(redis).schedule()
    assert all(s.id in scheduled for s in added)  # due now, without a restart
    assert "warning: no merged feed shows" in result.output  # the export's tags reach no feed here


# -- dead letters ---------------------------------------------------------------------------------


async def test_a_job_that_exhausts_its_tries_is_a_dead_letter(
    redis, redis_url, tmp_path: Path, feed_server: FeedServer, clock
) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, feed_server.set("/seed.rss", RSS, content_type="application/rss+xml"))
    settings = load_settings(config)
    from service.jobs import enqueue

    # A job whose worker died three times: arq refuses a fourth try; the dead letter keeps it.
    await enqueue(redis, "poll", "seed", None, job_id="poll:seed:dead")
    await redis.setex("arq:retry:poll:seed:dead", 3600, 3)
    # A job that raises (an unknown function's arguments): kept with its error.
    await enqueue(redis, "websub_notify", "no-such-feed", "c", "not-a-list", job_id="bad-notify")
    worker = build_worker(settings, redis_url, clock=clock, burst=True, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()  # arq closes its pool with the deprecated close()

    letters = {d.function: d for d in await DeadLetters(redis).list()}
    assert letters["poll"].args == ["seed", None] and "max 3 retries exceeded" in letters["poll"].error
    listed = await cli(redis_url, config, "dead", "list")
    assert letters["poll"].id in listed.output
    shown = json.loads((await cli(redis_url, config, "dead", "show", letters["poll"].id)).output)
    assert shown["function"] == "poll" and shown["tries"] >= 3

    retried = await cli(redis_url, config, "dead", "retry", letters["poll"].id)
    assert retried.exit_code == 0 and "queued again: poll(" in retried.output
    assert await DeadLetters(redis).get(letters["poll"].id) is None
    assert (await cli(redis_url, config, "dead", "purge")).exit_code != 0  # an id, or --all
    assert "purged" in (await cli(redis_url, config, "dead", "purge", "--all")).output
    assert (await DeadLetters(redis).counts()) == {"job": 0, "ingest": 0, "article": 0}


async def test_an_ingest_dead_letter_goes_back_to_the_stream(redis, clock) -> None:  # type: ignore[no-untyped-def]
    await redis.xadd(
        keys.INGEST_DEAD, {"source_id": "s", "articles": "[]", "error": "undecodable entry: x", "original_id": "1-0"}
    )
    letters = DeadLetters(redis)
    [letter] = await letters.list()
    assert letter.kind == "ingest" and letter.source_id == "s" and letter.error.startswith("undecodable")
    assert await letters.retry(letter.id) is not None
    assert await redis.xlen(keys.INGEST_DEAD) == 0 and await redis.xlen(keys.INGEST_STREAM) == 1
    assert await letters.get("ingest-nonsense") is None and await letters.purge("nope") == 0


async def test_an_entry_that_fails_validation_is_a_dead_letter(
    redis, redis_url, feed_server: FeedServer, tmp_path: Path, clock
) -> None:  # type: ignore[no-untyped-def]
    invalid = (DATA / "e2e" / "invalid-entry.rss").read_bytes()
    config = write_config(tmp_path, feed_server.set("/seed.rss", invalid, content_type="application/rss+xml"))
    settings = load_settings(config)
    await run_worker(settings, redis_url, clock)  # the real poll path: fetch, parse, normalise, queue, ingest

    assert await Store(redis, settings).article_count("seed") == 3  # the other entries are stored
    [letter] = await DeadLetters(redis).list()
    assert (letter.kind, letter.source_id) == ("article", "seed")
    assert letter.error == "entry has no guid, link or title to identify it by"
    assert json.loads(letter.payload) == {
        "index": 2,
        "link": "javascript:alert(1)",
        "published": "2023-09-19T20:00:00+00:00",
    }
    listed = await cli(redis_url, config, "dead", "list")
    assert f"{letter.id}\t" in listed.output and "article of seed: entry 2 (javascript:alert(1))" in listed.output
    status = await cli(redis_url, config, "status")
    assert "dead letters: 0 jobs, 0 ingest, 1 articles" in status.output

    # Read again at the next poll of a changed feed, the same entry is not kept a second time.
    feed_server.set(
        "/seed.rss", invalid.replace(b"Harbour ferry fares", b"Ferry fares"), content_type="application/rss+xml"
    )
    clock.advance(3600)
    await run_worker(settings, redis_url, clock)
    assert len(feed_server.seen("/seed.rss")) == 2
    assert (await DeadLetters(redis).counts())["article"] == 1

    retried = await cli(redis_url, config, "dead", "retry", letter.id)
    assert retried.exit_code != 0 and "cannot be retried" in retried.output
    assert await DeadLetters(redis).get(letter.id) is not None  # kept until purged
    assert (await cli(redis_url, config, "dead", "purge", letter.id)).exit_code == 0
    assert await DeadLetters(redis).list() == []


async def test_the_cli_shows_a_push_subscription(redis, redis_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, "http://seed.example/feed")
    now = utcnow()  # the CLI reads the real clock
    backup_poll = SourceState(
        last_poll=now - timedelta(days=2),
        last_success=now - timedelta(days=2),
        last_status=200,
        next_poll=now - timedelta(days=1) + timedelta(hours=1),
        next_poll_reason="push-backup",
    )
    await redis.set(keys.source_state("seed"), backup_poll.model_dump_json())
    subscription = {
        "status": PushStatus.ACTIVE,
        "hub": "https://hub.example/",
        "topic": "http://seed.example/feed",
        "lease_end": now + timedelta(days=5, minutes=1),
        "last_delivery": now - timedelta(minutes=5),
    }
    assert await SourceStates(redis).push.apply("seed", PushTransition(subscription, {"deliveries": 7, "misses": 2}))

    shown = await cli(redis_url, config, "source", "seed")
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("seed: ok ")  # a backup poll two days ago is not stale while pushed
    assert "polled only as a backup ([push] backup_poll_seconds)" in shown.output
    assert (
        "  push: hub https://hub.example/; state active (live); lease end 5d from now;"
        " last delivery 5m ago (7 in all); misses 2\n"
    ) in shown.output
    as_json = json.loads((await cli(redis_url, config, "source", "seed", "--json")).output)
    assert as_json["push"]["status"] == "active" and as_json["push"]["live"] is True
    assert (as_json["push"]["deliveries"], as_json["push"]["misses"]) == (7, 2)
    listed = (await cli(redis_url, config, "sources")).output
    assert listed.split()[:4] == ["seed", "ok", "200", "push"]
    status = (await cli(redis_url, config, "status")).output
    assert "push subscriptions: active 1\n" in status
    assert json.loads((await cli(redis_url, config, "status", "--json")).output)["push"]["active"] == 1


async def test_steering_an_unknown_registry_is_harmless(redis) -> None:  # type: ignore[no-untyped-def]
    registry = SourceRegistry(redis)
    await redis.hset(keys.RUNTIME_SOURCES, "broken", b"{not json")
    overlay = await registry.overlay()
    assert overlay.added == {} and overlay.version == 0
    await registry.add(SourceConfig(id="x", url="http://x/"), utcnow())
    assert (await registry.overlay()).version == 1 and await redis.zscore(keys.SCHEDULE, "x") is not None


async def test_a_running_worker_picks_up_a_new_source(
    redis, redis_url, feed_server: FeedServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """No restart, no burst: a long-running worker sees the announcement and polls the new source."""
    config = write_config(tmp_path, feed_server.set("/seed.rss", RSS, content_type="application/rss+xml"))
    worker = build_worker(load_settings(config), redis_url, poll_delay=0.05, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        for _ in range(200):  # the seed is polled first: the worker is up
            if feed_server.seen("/seed.rss"):
                break
            await asyncio.sleep(0.05)
        late = feed_server.set("/late.rss", RSS, content_type="application/rss+xml")
        await SourceRegistry(redis).add(SourceConfig(id="late", url=late, tags=["news"]), utcnow())
        for _ in range(200):
            if feed_server.seen("/late.rss"):
                break
            await asyncio.sleep(0.05)
        assert feed_server.seen("/late.rss"), "the running worker never polled the source added at run time"
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()  # arq closes its pool with the deprecated close()


async def test_sighup_announces_a_reload(redis, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    await aiohttp_client(create_app(settings_from_dict({}), redis=redis, clock=clock))
    if signal.SIGHUP not in getattr(asyncio.get_running_loop(), "_signal_handlers", {}):
        pytest.skip("the app could not install its SIGHUP handler on this loop")
    before = await SourceRegistry(redis).version()
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(100):
        if await SourceRegistry(redis).version() > before:
            break
        await asyncio.sleep(0.02)
    assert await SourceRegistry(redis).version() == before + 1
