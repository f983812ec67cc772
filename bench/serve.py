"""Serving benchmark: the real app's cached feed path against a precomputed-bytes ceiling.

Seeds a 100-item merged feed (~100 KB of Atom) into Redis (``REDIS_URL``, else an embedded
redis-server in a temporary directory), then, one at a time and each in its own process, serves
it with

- **real**: ``service.web.app.create_app`` as ``tributary serve`` runs it (feed-change subscription on),
- **ceiling**: a minimal aiohttp app returning the same bytes and headers, precomputed,

and drives both with the same load generator (``wrk`` if installed, else an aiohttp client loop
in a separate process) on the 200 path and the 304 path (``If-None-Match``), with no
``Accept-Encoding`` (both serve the identity bytes; ``--gzip`` asks for gzip, which both serve
precompressed). The ceiling does what an ideal handler must: one route, compare ``If-None-Match``
with the ETag, answer with prebuilt headers and bytes; no negotiation, no freshness check, no
request counting.

Both servers run side by side and the runs alternate (real 200, ceiling 200, real 304,
ceiling 304) for ``--rounds`` rounds, so a noisy neighbour hits both alike. Per run it prints
requests/s, p99 latency and the CPU the server process spent per request (its utime + stime
over the requests served: the figure least moved by a busy machine); then per path the median
real/ceiling ratio of requests/s and of CPU per request, against the goal (>= 0.85x, stretch 0.9x).

    python bench/serve.py [--rounds 3] [--duration 10] [--connections 50] [--threads 2] [--gzip]

With ``REDIS_URL`` the benchmark writes only ``trib:`` keys of its one feed and source (and their
change-log entries and dedup keys) and deletes them afterwards, with the partner API's cursor
secret when the real app created it (one already there stays). Point it at a DB of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import add_json_option, figure, record  # noqa: E402 - after the sys.path line

FEED = "bench"
SOURCE = "bench-src"
ITEMS = 100
PATHS = ("200", "304")
GOAL, STRETCH = 0.85, 0.9  # real/ceiling requests/s, both paths
PARAGRAPH = "<p>Some <a href='https://bench.example/x'>linked</a> text &amp; more about the story.</p>\n"


def settings_dict(port: int) -> dict[str, object]:
    return {
        "server": {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
        "sources": [{"id": SOURCE, "url": "https://bench.example/feed.xml", "name": "Bench"}],
        "feeds": [{"name": FEED, "title": "Bench feed", "sources": [SOURCE], "limit": ITEMS}],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- seeding ---------------------------------------------------------------------------------


async def seed(redis_url: str) -> bool:
    """Store the feed's articles; True when the DB already holds a cursor secret (kept afterwards)."""
    from redis.asyncio import Redis

    from service import keys
    from service.config import settings_from_dict
    from service.models import Article
    from service.store.articles import Store

    settings = settings_from_dict(settings_dict(0))
    redis = Redis.from_url(redis_url)
    try:
        store = Store(redis, settings)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        for n in range(ITEMS):
            when = t0 + timedelta(minutes=n)
            await store.upsert(
                Article(
                    id=f"{n + 1:032x}",
                    source_id=SOURCE,
                    url=f"https://bench.example/story/{n}",
                    title=f"Story number {n}",
                    summary=f"<p>Summary of story {n}</p>",
                    content=PARAGRAPH * 6,
                    published=when,
                    updated=when,
                    first_seen=when,
                ),
                t0,
            )
        return bool(await redis.exists(keys.API_CURSOR_SECRET))
    finally:
        await redis.aclose()


async def unseed(redis_url: str, keep_cursor_secret: bool) -> None:
    from redis.asyncio import Redis

    from service import keys

    redis = Redis.from_url(redis_url)
    ids = [f"{n + 1:032x}" for n in range(ITEMS)]
    try:
        doomed = [k async for k in redis.scan_iter(match=keys.EVERY_KEY) if SOURCE.encode() in k or FEED.encode() in k]
        doomed += [keys.article(i) for i in ids]
        doomed += [keys.url_owner(f"https://bench.example/story/{n}") for n in range(ITEMS)]
        await redis.delete(*doomed)
        for hash_key in (keys.CONTENT_HASHES, keys.TITLES, keys.CHANGELOG_FEEDS):
            await redis.hdel(hash_key, *ids)
        for zset_key in (keys.CHANGES, keys.RECENT):
            await redis.zrem(zset_key, *ids)
        ours = set(ids)
        entries = [e for e, fields in await redis.xrange(keys.CHANGELOG) if fields.get(b"id", b"").decode() in ours]
        if entries:
            await redis.xdel(keys.CHANGELOG, *entries)
        if not await redis.xlen(keys.CHANGELOG):
            await redis.delete(keys.CHANGELOG)
        if not keep_cursor_secret:  # the real app made it for this run
            await redis.delete(keys.API_CURSOR_SECRET)
    finally:
        await redis.aclose()


# -- the two servers (each run in a child process) -------------------------------------------


def serve_real(port: int, redis_url: str) -> None:
    from aiohttp import web

    from service import heap
    from service.config import settings_from_dict
    from service.web.app import create_app

    app = create_app(settings_from_dict(settings_dict(port)), redis_url=redis_url)
    heap.settle()  # as `tributary serve` does
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
    )


def serve_ceiling(port: int, capture: Path) -> None:
    """The same bytes and headers, precomputed: what an ideal handler costs in aiohttp."""
    from aiohttp import web

    from service import heap

    captured = json.loads(capture.read_text())
    body = bytes.fromhex(captured["body"])
    headers = captured["headers"]
    etag = headers["ETag"]
    not_modified_headers = {k: v for k, v in headers.items() if k not in ("Content-Type", "Content-Encoding")}

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=not_modified_headers)
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get(f"/feeds/{FEED}.atom", handler)
    heap.settle()  # the same collector settings as the real app's process
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def start_server(kind: str, port: int, arg: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), "--arg", arg])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


# -- load generation -------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    p99_ms: float
    requests: int
    cpu_seconds: float | None = None  # the server process's, over the run

    @property
    def cpu_us(self) -> float | None:
        return None if self.cpu_seconds is None or not self.requests else self.cpu_seconds / self.requests * 1e6


def process_cpu(pid: int) -> float | None:
    """utime + stime of ``pid`` in seconds (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, headers: dict[str, str], args: argparse.Namespace) -> Run:
    command = [
        "wrk",
        "--latency",
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{max(1, round(args.duration))}s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Run(rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], requests)


async def _client_loop(
    url: str, headers: dict[str, str], connections: int, duration: float
) -> tuple[float, float, int]:
    import aiohttp

    latencies: list[float] = []
    stop = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def worker() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000, len(latencies)


def run_client_loop(url: str, headers: dict[str, str], args: argparse.Namespace) -> Run:
    """The fallback generator, in its own process so it does not share the server's loop."""
    code = (
        f"import asyncio, json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.serve import _client_loop; "
        f"print(json.dumps(asyncio.run(_client_loop({url!r}, {headers!r}, {args.connections:d}, {args.duration:f}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rps, p99, requests = json.loads(out)
    return Run(rps, p99, requests)


def load(url: str, headers: dict[str, str], args: argparse.Namespace, pid: int | None = None) -> Run:
    """One load run; with ``pid``, the CPU that process spent meanwhile."""
    before = process_cpu(pid) if pid is not None else None
    run = (
        run_wrk(url, headers, args)
        if shutil.which("wrk") and not args.python_client
        else run_client_loop(url, headers, args)
    )
    after = process_cpu(pid) if pid is not None else None
    if before is not None and after is not None:
        run.cpu_seconds = after - before
    return run


# -- orchestration ---------------------------------------------------------------------------


def capture(url: str, path: Path, coding: str) -> dict[str, str]:
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept-Encoding": coding})
    with urllib.request.urlopen(request) as response:
        body = response.read()
        keep = ("Content-Type", "Content-Encoding", "ETag", "Last-Modified", "Cache-Control", "Vary", "Link")
        headers = {k: response.headers[k] for k in keep if response.headers[k] is not None}
    path.write_text(json.dumps({"body": body.hex(), "headers": headers}))
    return headers | {"size": str(len(body))}


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ratio: float) -> str:
    return "met (stretch met)" if ratio >= STRETCH else "met" if ratio >= GOAL else "NOT met"


def report(runs: dict[tuple[str, str], list[Run]], generator: str, json_path: str | None) -> None:
    """The runs' table and per-path medians; the figures name the load generator, since the
    aiohttp client loop, slower than either server, measures itself more than them."""
    if generator != "wrk":
        print(f"note: load from the {generator}, which saturates before either server does: the ratios")
        print("say more about the client than the servers; install wrk (Debian: apt-get install wrk)")
    print(
        f"{'path':<5}{'round':>6}{'real req/s':>12}{'p99 ms':>8}{'CPU us/req':>11}"
        f"{'ceiling req/s':>15}{'p99 ms':>8}{'CPU us/req':>11}{'ratio':>7}{'CPU ratio':>10}"
    )
    figures = []
    for path in PATHS:
        rps_ratios, cpu_ratios = [], []
        for n, (real, ceiling) in enumerate(zip(runs[("real", path)], runs[("ceiling", path)], strict=True), 1):
            rps_ratios.append(real.rps / ceiling.rps)
            cpu = f"{'-':>10}"
            if real.cpu_us and ceiling.cpu_us:
                cpu_ratios.append(ceiling.cpu_us / real.cpu_us)
                cpu = f"{cpu_ratios[-1]:>10.2f}"
            print(
                f"{path:<5}{n:>6}{real.rps:>12.0f}{real.p99_ms:>8.2f}{real.cpu_us or 0:>11.1f}"
                f"{ceiling.rps:>15.0f}{ceiling.p99_ms:>8.2f}{ceiling.cpu_us or 0:>11.1f}{rps_ratios[-1]:>7.2f}{cpu}"
            )
        line = f"{path}: median ratio {median(rps_ratios):.2f}x req/s"
        if cpu_ratios:
            line += f", {median(cpu_ratios):.2f}x CPU per request (ceiling/real)"
        print(f"{line}; goal >= {GOAL}x (stretch {STRETCH}x): {verdict(median(rps_ratios))}")
        figures.append(
            figure(
                f"{path} cached feed, real app (median of {len(rps_ratios)}, {generator})",
                median([r.rps for r in runs[("real", path)]]),
                "req/s",
                ratio=median(rps_ratios),
                goal=f">= {GOAL}x precomputed bytes",
            )
        )
    record("serve", figures, json_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating real/ceiling runs per path")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gzip", action="store_true", help="send Accept-Encoding: gzip (both serve it precompressed)")
    parser.add_argument("--python-client", action="store_true", help="use the aiohttp client loop even if wrk exists")
    parser.add_argument("--serve", choices=("real", "ceiling"), help=argparse.SUPPRESS)
    add_json_option(parser)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--arg", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "real":
        serve_real(args.port, args.arg)
        return
    if args.serve == "ceiling":
        serve_ceiling(args.port, Path(args.arg))
        return

    from service.store.embedded_redis import EmbeddedRedis

    coding = "gzip" if args.gzip else "identity"
    base_headers = {"Accept-Encoding": coding} if args.gzip else {}
    runs: dict[tuple[str, str], list[Run]] = {(kind, path): [] for kind in ("real", "ceiling") for path in PATHS}
    generator = "wrk" if shutil.which("wrk") and not args.python_client else "aiohttp client loop"
    with tempfile.TemporaryDirectory() as tmp:
        embedded = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            embedded = EmbeddedRedis(Path(tmp) / "redis", persist=False)
            (Path(tmp) / "redis").mkdir()
            embedded.start()
            redis_url = embedded.url
        servers: list[subprocess.Popen[bytes]] = []
        had_cursor_secret = True  # (until seeding says otherwise: never delete one not ours)
        try:
            had_cursor_secret = asyncio.run(seed(redis_url))
            ports = {"real": free_port(), "ceiling": free_port()}
            servers.append(start_server("real", ports["real"], redis_url))
            # Capture what the real app serves, for the ceiling to replay byte for byte.
            url = {kind: f"http://127.0.0.1:{port}/feeds/{FEED}.atom" for kind, port in ports.items()}
            captured = capture(url["real"], Path(tmp) / "capture.json", coding)
            servers.append(start_server("ceiling", ports["ceiling"], str(Path(tmp) / "capture.json")))
            pids = {"real": servers[0].pid, "ceiling": servers[1].pid}
            print(
                f"feed: {ITEMS} items, {int(captured['size']) // 1024} KiB Atom ({coding}); load: {generator}, "
                f"{args.connections} connections, {args.duration:g}s per run, {args.rounds} rounds"
            )
            path_headers = {"200": base_headers, "304": base_headers | {"If-None-Match": captured["ETag"]}}
            warm_up = argparse.Namespace(**{**vars(args), "duration": 1})
            for kind in ("real", "ceiling"):
                load(url[kind], base_headers, warm_up)
            for _ in range(args.rounds):
                for path in PATHS:
                    for kind in ("real", "ceiling"):
                        runs[(kind, path)].append(load(url[kind], path_headers[path], args, pids[kind]))
        finally:
            for server in servers:
                stop_server(server)
            if embedded is None:
                asyncio.run(unseed(redis_url, had_cursor_secret))
            else:
                embedded.stop()
    report(runs, generator, args.json)


if __name__ == "__main__":
    main()
