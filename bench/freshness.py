"""Freshness: how long from a publisher posting an item until it is in a merged feed.

A local publisher (one feed, polled every second) and, with ``--push``, a local WebSub hub the
feed names. Tributary runs as in production: ``tributary serve`` and ``tributary worker`` as
separate processes on a real Redis. For each of N items: the item is published at t0 (with
``--push`` the hub also delivers the feed to Tributary's callback, a signed fat ping), then
``/feeds/bench.json`` is read every 10 ms until the item is there, at t1. Prints p50, p95 and
the worst of t1 - t0, and whether the goal is met: p95 <= 2 s polling, p95 <= 1 s by push.

    python bench/freshness.py [--push] [--items 50] [--db 15]

Uses ``REDIS_URL`` (else an embedded Redis) with DB ``--db``, which it FLUSHES.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import tomli_w
from redis.asyncio import Redis

from bench.record import add_json_option, figure, record
from bench.redis_target import bench_redis
from tests.feedserver import FeedServer
from tests.hubserver import LocalHub
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
KEEP = 20  # items the feed lists
POLL_GOAL_SECONDS = 2.0  # p95, polling every second
PUSH_GOAL_SECONDS = 1.0  # p95, a fat ping


def feed(items: list[str], hub: str | None, self_url: str) -> str:
    links = f'<atom:link rel="self" href="{self_url}"/>' + (f'<atom:link rel="hub" href="{hub}"/>' if hub else "")
    entries = "".join(
        f"<item><title>{title}</title><link>https://bench.example/{title}</link><guid>{title}</guid></item>"
        for title in reversed(items[-KEEP:])
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>bench</title><link>https://bench.example/</link><description>d</description>{links}{entries}"
        "</channel></rss>"
    )


def config(port: int, feed_url: str, push: bool, data_dir: str) -> dict[str, object]:
    return {
        "server": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
        "fetch": {"allow_private_networks": True, "jitter_fraction": 0, "host_requests_per_minute": 600},
        "storage": {"data_dir": data_dir},
        "push": {"enabled": push},
        "sources": [
            {"id": "src", "url": feed_url, "interval_seconds": 1, "min_interval_seconds": 1, "adaptive": False}
        ],
        "feeds": [{"name": "bench", "title": "Bench", "sources": ["src"], "limit": KEEP}],
    }


async def visible(session: aiohttp.ClientSession, url: str, title: str) -> float:
    """When ``title`` is in the merged feed (read every 10 ms; 30 s at most)."""
    async with asyncio.timeout(30):
        while True:
            async with session.get(url) as response:
                if response.status == 200 and any(i["title"] == title for i in (await response.json())["items"]):
                    return time.monotonic()
            await asyncio.sleep(0.01)


async def wait_until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no {what} within 60 s")


def start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """``tributary serve`` and ``tributary worker``, as production runs them."""
    command = [sys.executable, "-m", "tributary", "--log-level", "WARNING"]
    return [subprocess.Popen([*command, verb], env=env, cwd=ROOT) for verb in ("serve", "worker")]


async def bench(args: argparse.Namespace, redis_url: str) -> list[float]:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    publisher, hub = FeedServer(), LocalHub()
    await publisher.start()
    await hub.start()
    port = free_port()
    feed_url = publisher.url("/feed.xml")
    hub_url = hub.url if args.push else None
    items = ["item-0"]
    publisher.set("/feed.xml", feed(items, hub_url, feed_url), content_type="application/rss+xml")
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        path = Path(tmp) / "tributary.toml"
        path.write_text(tomli_w.dumps(config(port, feed_url, args.push, tmp)))
        processes = start({**os.environ, "REDIS_URL": redis_url, "TRIBUTARY_CONFIG": str(path)})
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:

                async def serving() -> bool:
                    try:
                        async with session.get(f"{base}/feeds/bench.json") as response:
                            return response.status == 200 and bool((await response.json())["items"])
                    except aiohttp.ClientError:
                        return False

                await wait_until(serving, "the first poll")
                if args.push:

                    async def subscribed() -> bool:
                        async with session.get(f"{base}/push") as response:
                            return (await response.json())["active"] == 1

                    await wait_until(subscribed, "the hub subscription")
                    await asyncio.sleep(2)  # let the poll scheduled before the subscription run: then only push
                latencies = []
                for n in range(1, args.items + 1):
                    await asyncio.sleep(random.uniform(0.3, 1.3))  # out of step with the 1 s ticks
                    items.append(f"item-{n}")
                    body = feed(items, hub_url, feed_url)
                    publisher.set("/feed.xml", body, content_type="application/rss+xml")
                    t0 = time.monotonic()
                    if args.push:
                        assert await hub.publish(feed_url, body.encode()) == [202]
                    latencies.append(await visible(session, f"{base}/feeds/bench.json", items[-1]) - t0)
                return latencies
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
            await hub.stop()
            await publisher.stop()
            await redis.flushdb()
            await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--push", action="store_true", help="the feed names a local hub that delivers fat pings")
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument(
        "--db", type=int, default=int(os.environ.get("TRIBUTARY_BENCH_DB", "15")), help="Redis DB (flushed)"
    )
    add_json_option(parser)
    args = parser.parse_args()
    with bench_redis(args.db) as redis_url:
        latencies = asyncio.run(bench(args, redis_url))
    ordered = sorted(latencies)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    mode = "push (fat ping via a local hub)" if args.push else "poll (1 s interval)"
    goal = PUSH_GOAL_SECONDS if args.push else POLL_GOAL_SECONDS
    print(
        f"{mode}: {len(ordered)} items, published -> visible in /feeds/bench.json: "
        f"p50 {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )
    print(f"goal: p95 <= {goal:g} s: {'met' if p95 <= goal else 'NOT met'}")
    name = "push" if args.push else "poll"
    record(
        f"freshness_{name}",
        [figure(f"freshness p95, {name}", p95 * 1000, "ms", ratio=p95 / goal, goal=f"p95 <= {goal:g} s")],
        args.json,
    )


if __name__ == "__main__":
    main()
