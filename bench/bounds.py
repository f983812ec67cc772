"""Bounds benchmark: what one huge feed, one ingest burst and one ?limit= flood cost, before and after.

1. **Loop block**: a 50,000-item RSS body read the way a poll reads it, while a ticker measures
   how late the event loop runs (every other source's I/O waits that long).
   *before*: parse in a worker thread, then normalise every entry on the loop (the old pipeline);
   *after*: :func:`workers.normalise.read.read_feed` in a worker thread (newest
   ``items_per_poll`` only, parse and normalise both off the loop).
2. **Renders per burst**: 10,000 articles queued as 500 polls of 20, stored while a reader asks
   for the feed through the render cache; counts feed versions and renderings.
   *before*: one version bump per article (``Store.upsert`` as before); *after*: the drain, one
   bump per batch.
3. **Web memory under 80 distinct ?limit=**: a 1,000-item feed (~5 KB an item) served by the
   real app; the process's RSS after 80 requests with distinct ``?limit=``.
   *before*: a render cache bounded by entries only (emulated by a budget of 1 TiB);
   *after*: ``[server] render_cache_bytes`` at its default, 64 MiB.

Prints figures; asserts nothing. Uses an embedded redis-server in a temporary directory (its own).

    python bench/bounds.py [--items 50000] [--burst 10000] [--only loop|burst|memory]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from bench.record import add_json_option, figure, record  # noqa: E402
from service.config import Settings, settings_from_dict  # noqa: E402
from service.feeds.cache import FeedCache  # noqa: E402
from service.models import Article  # noqa: E402
from service.store.articles import Store  # noqa: E402
from service.store.embedded_redis import EmbeddedRedis  # noqa: E402
from workers.ingest import drain as ingest  # noqa: E402
from workers.normalise.entry import normalise_feed  # noqa: E402
from workers.normalise.read import read_feed  # noqa: E402
from workers.parse import parse_feed  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)


# -- 1. loop block ---------------------------------------------------------------------------


def big_rss(items: int) -> bytes:
    def stamp(n: int) -> str:
        return (T0 - timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")

    body = "".join(
        f"<item><guid isPermaLink='false'>g{n}</guid><title>Item {n} of the archive</title>"
        f"<link>https://bench.example/{n}</link><description>&lt;p&gt;Summary {n}.&lt;/p&gt;</description>"
        f"<pubDate>{stamp(n)}</pubDate></item>"
        for n in range(items)
    )
    channel = f"<channel><title>Big</title><link>https://bench.example/</link>{body}</channel>"
    return f"<rss version='2.0'>{channel}</rss>".encode()


async def worst_lag(work: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(longest late tick in seconds, wall time, articles) while ``work`` runs."""
    done = asyncio.Event()
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            worst = max(worst, loop.time() - before - 0.01)

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    articles = await work()
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    return worst, elapsed, articles


async def loop_block(items: int) -> dict[str, float]:
    settings = settings_from_dict({"sources": [{"id": "big", "url": "https://bench.example/feed"}]})
    source = settings.sources[0]
    body = big_rss(items)
    now = T0 + timedelta(days=1)

    async def before() -> int:
        feed = await asyncio.to_thread(
            parse_feed, body, source_id=source.id, url=source.url, content_type="application/rss+xml"
        )
        articles, _ = normalise_feed(feed, source=source, now=now, sanitise=settings.sanitise)
        return len(articles)

    async def after() -> int:
        read = await asyncio.to_thread(
            read_feed, body, source=source, settings=settings, now=now, content_type="application/rss+xml", headers={}
        )
        return len(read.articles)

    print(f"1. loop block, {items:,}-item RSS ({len(body) / 1e6:.1f} MB)")
    blocked = {}
    for name, work in (("before", before), ("after", after)):
        worst, elapsed, articles = await worst_lag(work)
        blocked[name] = worst * 1000
        print(f"   {name:6}  loop blocked up to {worst * 1000:8.0f} ms   {elapsed:6.1f} s   {articles:,} articles")
    return blocked


# -- 2. renders per burst --------------------------------------------------------------------


def burst_settings(burst: int) -> Settings:
    return settings_from_dict(
        {
            "storage": {"retention_per_source": burst},
            "sources": [{"id": "s", "url": "https://bench.example/feed"}],
            "feeds": [{"name": "all", "title": "All", "sources": ["s"], "limit": 50}],
        }
    )


def burst_article(n: int, body: str = "<p>Body.</p>") -> Article:
    when = T0 + timedelta(seconds=n)
    return Article(
        id=f"{n:032x}",
        source_id="s",
        title=f"Story {n}",
        summary=body,
        content=body,
        published=when,
        updated=when,
        first_seen=when,
    )


async def renders_during(
    redis: Redis, settings: Settings, store: Store, work: Callable[[], Awaitable[None]]
) -> tuple[int, int]:
    cache = FeedCache(store, settings)
    before = await store.feed_version("all")
    renders: set[int] = set()
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            snapshot = await cache.snapshot(settings.feeds[0])
            snapshot.rendered("atom")
            renders.add(id(snapshot))
            await asyncio.sleep(0)

    async def run() -> None:
        try:
            await work()
        finally:
            done.set()

    await asyncio.gather(reader(), run())
    return await store.feed_version("all") - before, len(renders)


async def burst(redis: Redis, size: int) -> dict[str, float]:
    settings = burst_settings(size)
    store = Store(redis, settings)
    articles = [burst_article(n) for n in range(size)]

    async def before() -> None:  # one bump and one announcement per article
        for article in articles:
            await store.upsert(article, article.first_seen)

    async def after() -> None:
        await ingest.ensure_group(redis)
        for start in range(0, size, 20):
            await ingest.publish(redis, "s", articles[start : start + 20])
        await ingest.drain(redis, store, lambda: T0, "bench", max_entries=size)

    print(f"2. renders per burst of {size:,} articles ({size // 20:,} polls of 20)")
    counts = {}
    for name, work in (("before", before), ("after", after)):
        await redis.flushdb()
        started = time.perf_counter()
        moved, renders = await renders_during(redis, settings, store, work)
        elapsed = time.perf_counter() - started
        counts[name] = renders
        print(f"   {name:6}  {moved:6,} version bumps   {renders:6,} renders   {elapsed:6.1f} s")
    return counts


# -- 3. web memory under distinct ?limit= ----------------------------------------------------


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) / 1024 if match else float("nan")


async def web_memory(redis: Redis, budget: int) -> None:
    """One run, in a process of its own (RSS never shrinks back for the next run to start from)."""
    from aiohttp import ClientSession, web

    from service.web.app import create_app

    body = "<p>" + "A paragraph of an ordinary article. " * 70 + "</p>"
    settings = settings_from_dict(
        {
            "server": {"render_cache_bytes": budget},
            "sources": [{"id": "s", "url": "https://bench.example/feed"}],
            "feeds": [{"name": "all", "title": "All", "sources": ["s"], "limit": 50}],
            "storage": {"retention_per_source": 1000},
        }
    )
    store = Store(redis, settings)
    for n in range(1000):
        article = burst_article(n, body)
        await store.upsert(article, article.first_seen)
    runner = web.AppRunner(create_app(settings, redis=redis), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    start = rss_mib()
    async with ClientSession() as session:
        for limit in range(921, 1001):
            url = f"http://127.0.0.1:{port}/feeds/all.atom?limit={limit}"
            async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
                await response.read()
    print(f"RSS {start:7.0f} MiB -> {rss_mib():7.0f} MiB")
    await runner.cleanup()


def web_memory_runs() -> dict[str, float]:
    print("3. web process RSS, 80 requests with distinct ?limit= on a 1,000-item feed (~5 KB an item)")
    rss = {}
    for name, budget in (("before", 1 << 40), ("after", 64 * 1024 * 1024)):
        run = subprocess.run(
            [sys.executable, __file__, "--only", "memory-run", "--budget", str(budget)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"   {name:6}  {run.stdout.strip()}")
        rss[name] = float(run.stdout.split()[-2])
    return rss


# -- main ------------------------------------------------------------------------------------


async def main(args: Any) -> None:
    figures = []
    if args.only in (None, "loop"):
        blocked = await loop_block(args.items)
        figures.append(
            figure(
                f"loop blocked by one {args.items:,}-item feed",
                blocked["after"],
                "ms",
                ratio=blocked["after"] / blocked["before"],
                goal="after / before",
            )
        )
    if args.only in (None, "burst", "memory-run"):
        with tempfile.TemporaryDirectory() as tmp:
            embedded = EmbeddedRedis(Path(tmp), persist=False)
            embedded.start()
            redis = Redis.from_url(embedded.url)
            try:
                if args.only == "memory-run":
                    await web_memory(redis, args.budget)
                else:
                    counts = await burst(redis, args.burst)
                    figures.append(
                        figure(
                            f"renders during a {args.burst:,}-article burst",
                            counts["after"],
                            "renders",
                            ratio=counts["after"] / max(1, counts["before"]),
                            goal="after / before",
                        )
                    )
            finally:
                await redis.aclose()
                embedded.stop()
    if args.only in (None, "memory"):
        rss = web_memory_runs()
        figures.append(
            figure(
                "web RSS after 80 distinct ?limit= (1,000 items)",
                rss["after"],
                "MiB",
                ratio=rss["after"] / rss["before"],
                goal="after / before",
            )
        )
    if figures and args.only != "memory-run":
        record("bounds", figures, args.json)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--only", choices=["loop", "burst", "memory", "memory-run"])
    parser.add_argument("--budget", type=int, default=64 * 1024 * 1024, help=argparse.SUPPRESS)
    add_json_option(parser)
    asyncio.run(main(parser.parse_args()))
