"""How many polls per second one worker process sustains, against the bare-aiohttp ceiling.

N local sources across H virtual hosts (h0.localtest .. h{H-1}.localtest, all resolved to
127.0.0.1 by a custom resolver) on one aiohttp server running in its own process. ``--changed``
of them serve a changed 50-item feed on every request (one new item, 49 known: the changed pass
polls them and stores what they queued, after two passes that stored their items); the others
answer 304 to their validators (their feed holds one item, so that priming 100,000 sources
stays quick). The worker side runs the path production runs: the dispatcher's claim of due
sources, ``poll_batch`` jobs of ``--batch`` sources (lease, host budget, fetch, parse, normalise,
queue, state, reschedule) with at most ``--concurrency`` polls in flight (``[worker] max_jobs``);
arq's own handling of the jobs is left out. The 304 pass alternates with a bare aiohttp client
at the same concurrency, the ceiling, for ``--rounds`` rounds; the ratio is the median round's.
Then the same 304s through single-source polls (the ``poll`` job's path) and ``fetch()`` alone.

For Redis it prints the commands it processed per second during the 304 passes (``INFO stats``
``total_commands_processed``) and its memory per source after priming (``INFO memory``
``used_memory`` over the empty DB, with the ingest stream emptied first: the articles queued
there are the ingest workers' to store and remove).

    python bench/poll_scale.py [--sources 10000] [--hosts 50] [--concurrency 100] [--changed 500]
                               [--batch 25] [--rounds 3] [--db 15] [--profile 304.prof]

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
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver
from redis.asyncio import Redis

from bench.record import add_json_option, figure, median_round, record
from bench.redis_target import bench_redis
from service import heap, keys
from service.clock import utcnow
from service.config import settings_from_dict
from service.models import UpsertOutcome
from service.store.articles import Store
from service.store.connect import request_client
from service.store.source_state import POLL_HISTORY
from workers.fetch.client import ACCEPT, fetch, new_session
from workers.ingest import drain as ingest
from workers.poll.batch import poll_batch
from workers.poll.pipeline import PollStatus, poll_source
from workers.resources import Resources
from workers.tasks import DISPATCH_BATCH, POLL_BATCH, poll_batches

ITEMS = 50


def feed_body(version: int, items: int = ITEMS, source: int = 0) -> bytes:
    """The ``version`` of source ``source``'s feed: its own items (sources share none, or the store
    would merge them as copies of one another)."""
    entries = "".join(
        f"<item><guid>item-{source}-{n}</guid><title>Item {n}</title><link>http://example.org/{source}/{n}</link>"
        f"<description>Body of item {n}, long enough to look like a news summary of a few words.</description>"
        f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(1_700_000_000 + n * 60))}</pubDate></item>"
        for n in range(version + items, version, -1)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title><link>http://example.org/</link>{entries}</channel></rss>'.encode()


def serve(port_queue: Any, changed: int) -> None:
    """The publisher side, in its own process: a new version for the first ``changed`` sources,
    304 (after a one-item feed) for the others."""
    versions: dict[str, int] = {}
    static = feed_body(0, items=1)

    async def handle(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n >= changed:
            if request.headers.get("If-None-Match") == '"static"':
                return web.Response(status=304, headers={"ETag": '"static"'})
            return web.Response(body=static, content_type="application/rss+xml", headers={"ETag": '"static"'})
        version = versions[request.path] = versions.get(request.path, 0) + 1
        body = feed_body(version, source=n)  # asked for once
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


async def batch_pass(res: Resources, source_ids: list[str], args: argparse.Namespace) -> Counter[str]:
    """Make ``source_ids`` due, then run them as production does: the dispatcher claims the due
    sources and cuts them into ``poll_batch`` jobs, ``--concurrency`` jobs run at once (arq's
    ``max_jobs``), their polls bounded by the process's places. Returns the polls' statuses."""
    await res.redis.zadd(keys.SCHEDULE, dict.fromkeys(source_ids, 0))
    statuses: Counter[str] = Counter()
    jobs: asyncio.Queue[tuple[list[str], str] | None] = asyncio.Queue()

    async def dispatcher() -> None:
        # Claim only while few jobs wait, as the once-a-second dispatcher does: a claim not begun
        # within its lease lapses, and its source is skipped (superseded) until claimed again.
        lease = res.settings.worker.lease_seconds
        while True:
            if jobs.qsize() * args.batch >= DISPATCH_BATCH:
                await asyncio.sleep(0.005)
                continue
            claimed = await res.store.sources.claim_due(res.clock(), lease, DISPATCH_BATCH)
            if not claimed:
                break
            for job in poll_batches(claimed, args.batch):
                jobs.put_nowait(job)
        for _ in range(args.concurrency):
            jobs.put_nowait(None)

    async def worker() -> None:
        while (job := await jobs.get()) is not None:
            source_ids, claim = job
            sources = [res.settings.source(source_id) for source_id in source_ids]
            reports = await poll_batch(res, [s for s in sources if s is not None], claim)
            statuses.update(str(report.status) for report in reports)

    await asyncio.gather(dispatcher(), *(worker() for _ in range(args.concurrency)))
    return statuses


async def redis_info(redis: Redis, field: str) -> int:
    section = "stats" if field == "total_commands_processed" else "memory"
    return int((await redis.info(section))[field])


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
    redis = request_client(redis_url, 10.0)  # the workers' client (hiredis packing)
    await redis.flushdb()
    session = new_session(settings.fetch, resolver=VirtualHosts())
    res = Resources(settings, redis, Store(redis, settings), session, utcnow)
    changed = [s.id for s in settings.sources[: args.changed]]
    unchanged = [s.id for s in settings.sources[args.changed :]]
    unchanged_sources = list(settings.sources[args.changed :])
    heap.settle()  # as `tributary worker` does once started (the bare client below runs under it too)

    try:
        print(
            f"{args.sources} sources ({len(changed)} changing) on {args.hosts} hosts, concurrency {args.concurrency}, "
            f"batches of {args.batch}, redis {redis_url}"
        )
        empty = await redis_info(redis, "used_memory")
        cpu, began = time.process_time(), time.perf_counter()
        primed = await batch_pass(res, [s.id for s in settings.sources], args)  # validators, connections
        assert primed == {PollStatus.FETCHED: args.sources}, primed
        line("priming (first fetch)", args.sources, time.perf_counter() - began, time.process_time() - cpu)
        await redis.delete(keys.INGEST_STREAM)
        per_source = (await redis_info(redis, "used_memory") - empty) / args.sources
        sample = unchanged[0] if unchanged else changed[0]
        state_bytes = await redis.memory_usage(keys.source_state(sample)) or 0
        history_bytes = await redis.memory_usage(keys.poll_history(sample)) or 0

        # A first 304 pass, printed but not the one compared: the pass right after priming runs
        # slower (the garbage priming left, cold code paths), and the other 304 passes run warm.
        cpu, began = time.process_time(), time.perf_counter()
        await batch_pass(res, unchanged, args)
        line("  304 path, first pass", len(unchanged), time.perf_counter() - began, time.process_time() - cpu)
        bare_connector = aiohttp.TCPConnector(limit=200, limit_per_host=8, ttl_dns_cache=300, resolver=VirtualHosts())
        bare = aiohttp.ClientSession(connector=bare_connector, headers={"Accept": ACCEPT})

        async def bare_fetch(source: Any) -> None:
            async with bare.get(source.url, headers={"If-None-Match": '"static"'}) as response:
                await response.read()
                assert response.status == 304

        # The ratio: the 304 pass and the bare client in alternating rounds, so a change in the
        # machine's speed during the run touches both sides alike; the median round counts.
        await run_pool(unchanged_sources[: args.concurrency], args.concurrency, bare_fetch)  # warm its pool
        profiler = cProfile.Profile() if args.profile else None
        rates: list[tuple[float, float]] = []
        commands, seconds_304 = 0, 0.0
        try:
            for round_ in range(1, args.rounds + 1):
                commands -= await redis_info(redis, "total_commands_processed")
                cpu, began = time.process_time(), time.perf_counter()
                if profiler and round_ == 1:
                    profiler.enable()
                statuses = await batch_pass(res, unchanged, args)
                if profiler and round_ == 1:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                wall = time.perf_counter() - began
                seconds_304 += wall
                ours = line(f"tributary 304 path, round {round_}", len(unchanged), wall, time.process_time() - cpu)
                commands += await redis_info(redis, "total_commands_processed")
                assert statuses == {PollStatus.NOT_MODIFIED: len(unchanged)}, statuses
                cpu = time.process_time()
                wall = await run_pool(unchanged_sources, args.concurrency, bare_fetch)
                ceiling = line(f"bare aiohttp 304, round {round_}", len(unchanged), wall, time.process_time() - cpu)
                rates.append((ours, ceiling))
        finally:
            await bare.close()
        rate_304, ceiling = median_round(rates)
        assert ceiling is not None  # every round has its bare-client rate

        if changed:
            # A changed feed as a worker meets it: one new item among stored ones, polled and then
            # stored (the poll job's own drain). Priming only queued its articles: two passes first
            # store them and let the polls learn which entries are stored unchanged.
            for _ in range(2):
                await batch_pass(res, changed, args)
                await ingest.drain(res.redis, res.store, res.clock, "bench", max_entries=10**9)
            cpu, began = time.process_time(), time.perf_counter()
            statuses = await batch_pass(res, changed, args)
            report = await ingest.drain(res.redis, res.store, res.clock, "bench", max_entries=10**9)
            changed_cpu = (time.process_time() - cpu) / len(changed)
            changed_rate = line(
                "tributary changed path", len(changed), time.perf_counter() - began, changed_cpu * len(changed)
            )
            assert statuses == {PollStatus.FETCHED: len(changed)}, statuses
            assert report.outcomes == {UpsertOutcome.NEW: len(changed)}, report.outcomes  # one new item each

        # The same 304s one source per job (the `poll` job's path), then the HTTP part alone.
        single: Counter[str] = Counter()

        async def poll_one(source: Any) -> None:
            single[(await poll_source(res, source)).status] += 1

        cpu = time.process_time()
        wall = await run_pool(unchanged_sources, args.concurrency, poll_one)
        line("  single-source polls", len(unchanged), wall, time.process_time() - cpu)
        assert single == {PollStatus.NOT_MODIFIED: len(unchanged)}, single

        async def fetch_only(source: Any) -> None:
            result = await fetch(session, source.url, source_id=source.id, config=settings.fetch, etag='"static"')
            assert result.not_modified

        cpu = time.process_time()
        wall = await run_pool(unchanged_sources, args.concurrency, fetch_only)
        line("  of which fetch() alone", len(unchanged), wall, time.process_time() - cpu)
        print(
            f"304 path / ceiling: {rate_304 / ceiling:.2f}x, the median of {args.rounds} rounds "
            f"({', '.join(f'{ours / bare:.2f}x' for ours, bare in rates)}) (goal >= 0.5x)"
        )
        polls_304 = args.rounds * len(unchanged)
        print(
            f"redis during the 304 passes: {commands / seconds_304:,.0f} commands/s, "
            f"{commands / polls_304:.1f} per poll"
        )
        print(
            f"redis memory per source after priming: {per_source:,.0f} bytes "
            f"(a 304 source's state {state_bytes} B, its poll history {history_bytes} B holding 1 of up to "
            f"{POLL_HISTORY} polls)"
        )
        record(
            "poll_scale",
            [
                figure(
                    f"304 path, {args.sources:,} sources",
                    rate_304,
                    "polls/s",
                    ratio=rate_304 / ceiling,
                    goal=">= 0.5x bare aiohttp",
                ),
                figure("Redis commands during the 304 pass", commands / seconds_304, "commands/s"),
                figure("Redis memory per source after priming", per_source, "B"),
                *(
                    [
                        figure("changed 50-item feed, polled and stored", changed_rate, "polls/s"),
                        figure("changed 50-item feed, CPU per poll", changed_cpu * 1000, "ms"),
                    ]
                    if changed
                    else []
                ),
            ],
            args.json,
        )
    finally:
        await session.close()
        await redis.flushdb()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=100, help="polls in flight ([worker] max_jobs)")
    parser.add_argument("--changed", type=int, default=500, help="sources serving a changed 50-item feed")
    add_json_option(parser)
    parser.add_argument("--batch", type=int, default=POLL_BATCH, help="sources per poll_batch job")
    parser.add_argument(
        "--db", type=int, default=int(os.environ.get("TRIBUTARY_BENCH_DB", "15")), help="Redis DB (flushed)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the 304 pass and the bare client")
    parser.add_argument("--profile", help="write a cProfile of the first round's 304 pass here")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(port_queue, args.changed), daemon=True)
    server.start()
    try:
        port = port_queue.get(timeout=30)
        with bench_redis(args.db) as redis_url:
            asyncio.run(bench(args, redis_url, port))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
