"""How many polls per second one worker process sustains, against the bare-aiohttp ceiling.

N local sources across H virtual hosts (h0.localtest .. h{H-1}.localtest, all resolved to
127.0.0.1 by a custom resolver) on one aiohttp server running in its own process. Even sources
answer 304 to their validators; odd ones serve a changed 50-item feed on every request (one new
item, 49 known). The worker side runs the real poll path (lease, host budget, fetch, parse,
normalise, queue, state, reschedule) at a fixed concurrency, then a bare aiohttp client fetches
the same 304 URLs at the same concurrency: the ceiling.

    python bench/poll_scale.py [--sources 10000] [--hosts 50] [--concurrency 100] [--db 15]
                               [--profile 304.prof]

Uses ``REDIS_URL`` (else an embedded Redis) with DB ``--db``, which it FLUSHES.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver
from redis.asyncio import Redis

from service import keys
from service.clock import utcnow
from service.config import settings_from_dict
from service.store.articles import Store
from workers.fetch.client import ACCEPT, fetch, new_session
from workers.poll.pipeline import PollStatus, poll_source
from workers.resources import Resources

ITEMS = 50


def feed_body(version: int) -> bytes:
    items = "".join(
        f"<item><guid>item-{n}</guid><title>Item {n}</title><link>http://example.org/{n}</link>"
        f"<description>Body of item {n}, long enough to look like a news summary of a few words.</description>"
        f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(1_700_000_000 + n * 60))}</pubDate></item>"
        for n in range(version + ITEMS, version, -1)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title><link>http://example.org/</link>{items}</channel></rss>'.encode()


def serve(port_queue: Any) -> None:
    """The publisher side, in its own process: 304 for even sources, a new version for odd ones."""
    versions: dict[str, int] = {}
    bodies: dict[int, bytes] = {}
    static = feed_body(0)

    async def handle(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n % 2 == 0:
            if request.headers.get("If-None-Match") == '"static"':
                return web.Response(status=304, headers={"ETag": '"static"'})
            return web.Response(body=static, content_type="application/rss+xml", headers={"ETag": '"static"'})
        version = versions[request.path] = versions.get(request.path, 0) + 1
        body = bodies.get(version)
        if body is None:
            body = bodies[version] = feed_body(version)
        return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": f'"v{version}"'})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{n}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


class VirtualHosts(AbstractResolver):
    """h*.localtest -> 127.0.0.1: many hosts for the per-host budget, one server."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):  # type: ignore[no-untyped-def]
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


async def run_pool(items: list[Any], concurrency: int, work: Any) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def runner() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return time.perf_counter() - start


def line(label: str, polls: int, wall: float, cpu: float) -> float:
    rate = polls / wall
    print(f"{label:<28} {polls:>6} polls  {wall:7.2f} s  {rate:8.0f} polls/s  {cpu / polls * 1e6:7.0f} µs CPU/poll")
    return rate


async def bench(args: argparse.Namespace, redis_url: str, port: int) -> None:
    sources = [
        {
            "id": f"s{n}",
            "url": f"http://h{n % args.hosts}.localtest:{port}/f/{n}",
            "interval_seconds": 600,
            "adaptive": False,
        }
        for n in range(args.sources)
    ]
    settings = settings_from_dict(
        {
            "fetch": {
                "allow_private_networks": True,
                "host_concurrency": args.concurrency,
                "host_requests_per_minute": 10**9,
                "jitter_fraction": 0,
            },
            "worker": {"max_jobs": args.concurrency},
            "sources": sources,
        }
    )
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    session = new_session(settings.fetch, resolver=VirtualHosts())
    res = Resources(settings, redis, Store(redis, settings), session, utcnow)
    statuses: dict[str, int] = {}

    async def poll(source: Any) -> None:
        report = await poll_source(res, source)
        statuses[report.status] = statuses.get(report.status, 0) + 1

    try:
        print(f"{args.sources} sources on {args.hosts} hosts, concurrency {args.concurrency}, redis {redis_url}")
        await run_pool(list(settings.sources), args.concurrency, poll)  # prime validators and connections
        statuses.clear()
        unchanged = [s for n, s in enumerate(settings.sources) if n % 2 == 0]
        changed = [s for n, s in enumerate(settings.sources) if n % 2 == 1]

        profiler = cProfile.Profile() if args.profile else None
        cpu = time.process_time()
        if profiler:
            profiler.enable()
        wall = await run_pool(unchanged, args.concurrency, poll)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        rate_304 = line("tributary 304 path", len(unchanged), wall, time.process_time() - cpu)
        assert statuses == {PollStatus.NOT_MODIFIED: len(unchanged)}, statuses
        statuses.clear()

        cpu = time.process_time()
        wall = await run_pool(changed, args.concurrency, poll)
        line("tributary changed path", len(changed), wall, time.process_time() - cpu)
        assert statuses == {PollStatus.FETCHED: len(changed)}, statuses
        await redis.delete(keys.INGEST_STREAM)

        # The HTTP part of the poll alone (our session and fetch(), no Redis): where the cost sits.
        async def fetch_only(source: Any) -> None:
            result = await fetch(session, source.url, source_id=source.id, config=settings.fetch, etag='"static"')
            assert result.not_modified

        cpu = time.process_time()
        wall = await run_pool(unchanged, args.concurrency, fetch_only)
        line("  of which fetch() alone", len(unchanged), wall, time.process_time() - cpu)

        bare_connector = aiohttp.TCPConnector(limit=200, limit_per_host=8, ttl_dns_cache=300, resolver=VirtualHosts())
        async with aiohttp.ClientSession(connector=bare_connector, headers={"Accept": ACCEPT}) as bare:

            async def bare_fetch(source: Any) -> None:
                async with bare.get(source.url, headers={"If-None-Match": '"static"'}) as response:
                    await response.read()
                    assert response.status == 304

            await run_pool(unchanged[: args.concurrency], args.concurrency, bare_fetch)  # warm the pool
            cpu = time.process_time()
            wall = await run_pool(unchanged, args.concurrency, bare_fetch)
            ceiling = line("bare aiohttp 304 (ceiling)", len(unchanged), wall, time.process_time() - cpu)
        print(f"304 path / ceiling: {rate_304 / ceiling:.2f}x (goal >= 0.5x)")
    finally:
        await session.close()
        await redis.flushdb()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--db", type=int, default=int(os.environ.get("TRIBUTARY_BENCH_DB", "15")), help="Redis DB (flushed)"
    )
    parser.add_argument("--profile", help="write a cProfile of the 304 pass here")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(port_queue,), daemon=True)
    server.start()
    embedded = None
    try:
        port = port_queue.get(timeout=30)
        if os.environ.get("REDIS_URL"):
            from tests.conftest import with_db

            redis_url = with_db(os.environ["REDIS_URL"], args.db)
        else:
            from service.store.embedded_redis import EmbeddedRedis

            embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-redis-")), persist=False)
            embedded.start()
            redis_url = embedded.url
        asyncio.run(bench(args, redis_url, port))
    finally:
        server.terminate()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
