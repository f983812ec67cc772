"""What memory the service takes: Redis bytes per stored article, the RSS of a web and a worker
process, and the retention that keeps a source's share bounded.

1. **Redis per article.** ``--articles`` articles (2 KB of content each, ``--per-source`` per
   source, every source in the merged feed ``all`` and in one of ``--groups`` group feeds) go
   through the real ``Store.upsert`` in ingest batches (one ``announce_moved`` and one
   ``trim_source`` per touched source a batch, as the ingest drain does). ``used_memory``
   after minus before, divided by the articles, at a tenth of the run and at the end: the two
   agree if the cost is linear.
2. **Web RSS.** A real ``tributary serve`` over those articles serves every merged feed in
   every format (and a few ``?limit=``), then its VmRSS is read.
3. **Worker RSS.** A fresh DB, ``--poll-sources`` sources on a local feed server (50 items
   each), one real ``tributary worker``: its VmRSS once every source has been polled and
   every article ingested.
4. **Retention.** One source with ``[storage] retention_per_source = --retention`` receives
   three times that many articles in ten batches: its stored count and Redis bytes after
   each batch, which stop growing at the retention. Shown apart: the change log (ids, not
   documents, kept for ``[api] changelog_retention_days``) and the URL-owner keys
   (``trib:url:*``, one per stored article, removed with it).
Part 3 also prints how many errors the worker logged, and the first.

    python bench/memory.py [--articles 100000] [--per-source 500] [--retention 500]
                           [--poll-sources 200] [--db 15] [--json PATH]

Uses ``REDIS_URL`` (else an embedded Redis) with DB ``--db``, which it FLUSHES.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tomli_w
from redis.asyncio import Redis

from bench.record import add_json_option, figure, record
from bench.redis_target import bench_redis
from service import keys
from service.config import Settings, settings_from_dict
from service.models import Article, compute_content_hash
from service.store.articles import Store

CONTENT = ("<p>" + ("A paragraph of the story, long enough to read like news copy. " * 9)[:504] + "</p>\n") * 4
assert len(CONTENT) == 2048, len(CONTENT)
BATCH = 500
FEED_ITEMS = 50
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_rss(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match[1]) * 1024 if match else 0


def config(sources: int, groups: int, *, port: int = 8080, retention: int = 500, feed_url: str = "") -> dict[str, Any]:
    ids = [f"src-{n:05d}" for n in range(sources)]
    return {
        "server": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
        "storage": {"retention_per_source": retention},
        "fetch": {"allow_private_networks": True, "host_concurrency": 50, "host_requests_per_minute": 10**6},
        "sources": [
            {"id": i, "url": f"{feed_url or 'https://bench.example'}/f/{i}", "interval_seconds": 3600} for i in ids
        ],
        "feeds": [{"name": "all", "title": "All", "sources": ids}]
        + [{"name": f"group-{g}", "title": f"Group {g}", "sources": ids[g::groups]} for g in range(groups) if groups],
    }


def article(source: str, n: int) -> Article:
    when = T0 + timedelta(seconds=n)
    draft = Article(
        id=hashlib.blake2b(f"{source}/{n}".encode(), digest_size=16).hexdigest(),
        source_id=source,
        url=f"https://bench.example/{source}/story/{n}",
        title=f"Story {n} of {source}: a headline of ordinary length",
        summary=f"<p>Summary of story {n}, a sentence or two of it.</p>",
        content=CONTENT,
        published=when,
        updated=when,
        first_seen=when,
        content_hash="-",
    )
    return draft.model_copy(update={"content_hash": compute_content_hash(draft)})


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def changelog_bytes(redis: Redis) -> int:
    return sum([int(await redis.memory_usage(k, samples=0) or 0) for k in (keys.CHANGELOG, keys.CHANGELOG_FEEDS)])


async def url_key_bytes(redis: Redis) -> int:
    """The URL-owner keys (``trib:url:*``): one per stored article, removed with it."""
    found = [k async for k in redis.scan_iter(match=keys.url_owner("x").rsplit(":", 1)[0] + ":*", count=1000)]
    return sum([int(await redis.memory_usage(k, samples=0) or 0) for k in found])


async def store_batch(store: Store, batch: list[Article]) -> None:
    """One ingest batch, as workers/ingest/drain.py writes it."""
    for a in batch:
        await store.upsert(a, a.first_seen, announce=False)
    await store.announce_moved()
    for source in {a.source_id for a in batch}:
        await store.trim_source(source, batch[-1].first_seen, announce=False)


# -- 1. Redis bytes per article ------------------------------------------------------------------


async def per_article(redis: Redis, settings: Settings, total: int, per_source: int) -> dict[str, float]:
    store = Store(redis, settings)
    sources = [s.id for s in settings.sources]
    tenth = max(1, total // 10)
    base = await used_memory(redis)
    out: dict[str, float] = {}
    stored = 0
    started, cpu = time.perf_counter(), time.process_time()
    while stored < total:
        batch = [article(sources[(stored + i) // per_source], (stored + i) % per_source) for i in range(BATCH)]
        batch = batch[: total - stored]
        await store_batch(store, batch)
        stored += len(batch)
        if (stored >= tenth and not out) or stored == total:
            per = (await used_memory(redis) - base) / stored
            out[f"bytes_per_article_at_{stored}"] = per
            print(f"  {stored:>8,} articles  used_memory +{mib(per * stored):>11}  {per:8,.0f} B/article")
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    one = await redis.memory_usage(keys.article(batch[-1].id))
    print(
        f"  one article document: {one:,} B in Redis ({len(batch[-1].model_dump_json()):,} B of JSON); "
        f"stored in {wall:.1f} s ({cpu_s:.1f} s CPU here), {stored / wall:,.0f} upserts/s"
    )
    out["article_key_bytes"] = float(one or 0)
    out["used_memory"] = float(await used_memory(redis))
    return out


# -- 2. web RSS ----------------------------------------------------------------------------------


def write_config(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / "tributary.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def start(verb: str, config_file: Path, redis_url: str) -> subprocess.Popen[bytes]:
    """``tributary VERB``, its log (warnings and worse, JSON lines) in ``VERB.log`` beside the config."""
    env = {**os.environ, "REDIS_URL": redis_url, "TRIBUTARY_CONFIG": str(config_file)}
    with (config_file.parent / f"{verb}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tributary", "--log-level", "WARNING", "--log-format", "json", verb],
            env=env,
            cwd=str(config_file.parent),
            stderr=log,
        )


def errors_logged(folder: Path, verb: str) -> list[str]:
    """The messages of the error lines ``tributary VERB`` logged."""
    found = []
    for line in (folder / f"{verb}.log").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "critical"):
            found.append(str(entry.get("msg", "")))
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def web_rss(folder: Path, settings_data: dict[str, Any], redis_url: str) -> dict[str, float]:
    port = settings_data["server"]["port"]
    process = start("serve", write_config(folder, settings_data), redis_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("tributary serve did not start") from None
                time.sleep(0.2)
        idle = vm_rss(process.pid)
        names = [f["name"] for f in settings_data["feeds"]]
        served = 0
        started = time.perf_counter()
        for name in names:
            for fmt in ("atom", "rss", "json"):
                for query in ("", "?limit=20", "?limit=500"):
                    served += len(get(f"http://127.0.0.1:{port}/feeds/{name}.{fmt}{query}"))
        busy = vm_rss(process.pid)
        requests = len(names) * 9
        print(
            f"  tributary serve: RSS {mib(idle)} started, {mib(busy)} after {requests} merged-feed requests "
            f"({mib(served)} served in {time.perf_counter() - started:.1f} s)"
        )
        return {"web_rss_idle": idle, "web_rss": busy}
    finally:
        stop(process)


# -- 3. worker RSS -------------------------------------------------------------------------------


def feed_server(port_queue: Any) -> None:
    """Every /f/{id} answers a 50-item RSS feed of its own (in its own process)."""
    from aiohttp import web

    def body(source: str) -> bytes:
        items = "".join(
            f"<item><guid>{source}-{n}</guid><title>Story {n} of {source}</title>"
            f"<link>http://news.example/{source}/{n}</link><description>{CONTENT[:400]}</description>"
            f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(1_760_000_000 + n * 60))}</pubDate>"
            "</item>"
            for n in range(FEED_ITEMS)
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{source}</title><link>http://news.example/</link>{items}</channel></rss>'.encode()

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body(request.match_info["id"]), content_type="application/rss+xml")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{id}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def count_articles(redis_url: str, sources: list[str]) -> int:
    redis = Redis.from_url(redis_url)
    try:
        return sum([int(await redis.zcard(keys.source_index(s))) for s in sources])
    finally:
        await redis.aclose()


def worker_rss(folder: Path, sources: int, redis_url: str) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    port_queue = ctx.Queue()
    server = ctx.Process(target=feed_server, args=(port_queue,), daemon=True)
    server.start()
    try:
        feed_port = port_queue.get(timeout=30)
        data = config(sources, 0, port=free_port(), feed_url=f"http://127.0.0.1:{feed_port}")
        ids = [s["id"] for s in data["sources"]]
        expected = sources * FEED_ITEMS
        process = start("worker", write_config(folder, data), redis_url)
        try:
            started = time.perf_counter()
            idle = 0
            while (found := asyncio.run(count_articles(redis_url, ids))) < expected:
                idle = idle or vm_rss(process.pid)
                if process.poll() is not None or time.perf_counter() - started > 600:
                    raise SystemExit(f"the worker stored {found} of {expected} articles")
                time.sleep(0.5)
            time.sleep(1)  # the batch's trims and announcements
            busy = vm_rss(process.pid)
            print(
                f"  tributary worker: RSS {mib(busy)} after polling {sources} sources and ingesting "
                f"{expected:,} articles in {time.perf_counter() - started:.1f} s"
            )
        finally:
            stop(process)
        errors = errors_logged(folder, "worker")
        if errors:
            print(f"  the worker logged {len(errors)} errors, the first: {errors[0]}")
        return {"worker_rss": busy, "worker_errors": len(errors)}
    finally:
        server.terminate()


# -- 4. retention --------------------------------------------------------------------------------


async def retention(redis: Redis, retention: int) -> dict[str, float]:
    settings = settings_from_dict(config(1, 0, retention=retention))
    store = Store(redis, settings)
    source = settings.sources[0].id
    base = await used_memory(redis)
    step = max(1, retention * 3 // 10)
    rows = []
    for n in range(0, retention * 3, step):
        await store_batch(store, [article(source, i) for i in range(n, min(n + step, retention * 3))])
        log, urls = await changelog_bytes(redis), await url_key_bytes(redis)
        total = await used_memory(redis) - base
        rows.append((min(n + step, retention * 3), await store.article_count(source), total - log - urls, log, urls))
    print(f"  {'received':>9} {'stored':>7} {'articles+indexes':>17} {'change log':>11} {'URL keys':>9}")
    for received, stored, data, log, urls in rows:
        print(f"  {received:>9,} {stored:>7,} {mib(data):>17} {mib(log):>11} {mib(urls):>9}")
    at_1x = next(r for r in rows if r[0] >= retention)
    last = rows[-1]
    changes = last[0] * 2 - last[1]  # every article created, and all but the stored ones removed
    print(
        f"  from 1x to 3x the retention: stored {at_1x[1]:,} -> {last[1]:,}; articles+indexes "
        f"{last[2] / at_1x[2]:.2f}x; change log {(last[3] - at_1x[3]) / (changes - (at_1x[0] * 2 - at_1x[1])):.0f} B "
        f"a change (trimmed after [api] changelog_retention_days); URL-owner keys "
        f"{last[4] / at_1x[4]:.2f}x ({(last[4] - at_1x[4]) / (last[0] - at_1x[0]):.0f} B more per article received)"
    )
    return {
        "retention_stored": float(last[1]),
        "retention_growth": last[2] / at_1x[2],
        "changelog_bytes_per_change": last[3] / changes,
        "url_key_growth": last[4] / at_1x[4],
        "url_key_bytes_per_article": last[4] / last[0],
    }


# -- orchestration -------------------------------------------------------------------------------


async def flushed(redis_url: str) -> Redis:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    return redis


async def flush(redis_url: str) -> None:
    await (await flushed(redis_url)).aclose()


def run(args: argparse.Namespace, redis_url: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    sources = max(1, -(-args.articles // args.per_source))
    data = config(sources, args.groups, port=free_port(), retention=max(args.per_source, 500))
    settings = settings_from_dict(data)

    async def stage_one() -> None:
        redis = await flushed(redis_url)
        try:
            print(
                f"1. Redis per article: {args.articles:,} articles of {len(CONTENT):,} B content, "
                f"{sources} sources, feeds 'all' + {args.groups} groups"
            )
            figures.update(await per_article(redis, settings, args.articles, args.per_source))
        finally:
            await redis.aclose()

    asyncio.run(stage_one())
    with tempfile.TemporaryDirectory() as tmp:
        print("2. web process")
        figures.update(web_rss(Path(tmp), data, redis_url))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(flush(redis_url))
        print(f"3. worker process, {args.poll_sources} sources of {FEED_ITEMS} items")
        figures.update(worker_rss(Path(tmp), args.poll_sources, redis_url))

    async def stage_four() -> None:
        redis = await flushed(redis_url)
        try:
            print(f"4. retention_per_source = {args.retention}, one source receiving 3x that")
            figures.update(await retention(redis, args.retention))
        finally:
            await redis.flushdb()
            await redis.aclose()

    asyncio.run(stage_four())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--per-source", type=int, default=500, help="articles per source (<= the retention)")
    parser.add_argument("--groups", type=int, default=10, help="group feeds beside 'all' (each source in one)")
    parser.add_argument("--retention", type=int, default=500, help="retention_per_source of part 4")
    parser.add_argument("--poll-sources", type=int, default=200, help="sources the worker polls in part 3")
    parser.add_argument(
        "--db", type=int, default=int(os.environ.get("TRIBUTARY_BENCH_DB", "15")), help="Redis DB (flushed)"
    )
    add_json_option(parser)
    args = parser.parse_args()

    with bench_redis(args.db) as redis_url:
        f = run(args, redis_url)
    per = [v for k, v in f.items() if k.startswith("bytes_per_article_at_")]
    small, large = per[0], per[-1]
    record(
        "memory",
        [
            figure(
                f"Redis bytes/article at {args.articles:,} (2 KB content)",
                large,
                "B",
                ratio=large / small,
                goal="linear: ratio to the 1/10 run ~1.0",
            ),
            figure("web RSS after serving merged feeds", f["web_rss"] / 2**20, "MiB"),
            figure(f"worker RSS after polling {args.poll_sources} sources", f["worker_rss"] / 2**20, "MiB"),
            figure(
                f"stored after 3x retention_per_source={args.retention}",
                f["retention_stored"],
                "articles",
                ratio=f["retention_growth"],
                goal="bounded: articles+indexes at 3x / at 1x ~1.0",
            ),
            figure(
                "URL-owner keys at 3x retention_per_source",
                f["url_key_bytes_per_article"],
                "B/article received",
                ratio=f["url_key_growth"],
                goal="bounded: at 3x / at 1x ~1.0",
            ),
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
