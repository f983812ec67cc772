"""Serving benchmark: the real app's cached feed path against a precomputed-bytes ceiling.

Seeds a 100-item merged feed (~100 KB of Atom) into Redis (``REDIS_URL``, else an embedded
redis-server in a temporary directory), then, one at a time and each in its own process, serves
it with

- **real**: ``service.web.app.create_app`` as ``tributary serve`` runs it (feed-change subscription on),
- **ceiling**: a minimal aiohttp app returning the same bytes and headers, precomputed,

and drives both with the same load generator (``wrk`` if installed, else an aiohttp client loop
in a separate process) on the 200 path and the 304 path (``If-None-Match``). Prints requests/s,
p99 latency and real/ceiling ratios. The goal is >= 0.8x the ceiling on both paths.

    python bench/serve.py [--duration 10] [--connections 50] [--threads 2]

With ``REDIS_URL`` the benchmark writes only ``trib:`` keys of its one feed and source and
deletes them afterwards; point it at a DB of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEED = "bench"
SOURCE = "bench-src"
ITEMS = 100
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


async def seed(redis_url: str) -> None:
    from redis.asyncio import Redis

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
    finally:
        await redis.aclose()


async def unseed(redis_url: str) -> None:
    from redis.asyncio import Redis

    from service import keys

    redis = Redis.from_url(redis_url)
    ids = [f"{n + 1:032x}" for n in range(ITEMS)]
    try:
        doomed = [k async for k in redis.scan_iter(match=keys.EVERY_KEY) if SOURCE.encode() in k or FEED.encode() in k]
        doomed += [keys.article(i) for i in ids]
        await redis.delete(*doomed)
        await redis.hdel(keys.CONTENT_HASHES, *ids)
        await redis.zrem(keys.CHANGES, *ids)
    finally:
        await redis.aclose()


# -- the two servers (each run in a child process) -------------------------------------------


def serve_real(port: int, redis_url: str) -> None:
    from aiohttp import web

    from service.config import settings_from_dict
    from service.web.app import create_app

    web.run_app(
        create_app(settings_from_dict(settings_dict(port)), redis_url=redis_url),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
    )


def serve_ceiling(port: int, capture: Path) -> None:
    """The same bytes and headers, precomputed: what an ideal handler costs in aiohttp."""
    from aiohttp import web

    captured = json.loads(capture.read_text())
    body = bytes.fromhex(captured["body"])
    headers = captured["headers"]
    etag = headers["ETag"]
    not_modified_headers = {k: v for k, v in headers.items() if k != "Content-Type"}

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=not_modified_headers)
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get(f"/feeds/{FEED}.atom", handler)
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


def run_wrk(url: str, headers: dict[str, str], args: argparse.Namespace) -> tuple[float, float]:
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
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def _client_loop(url: str, headers: dict[str, str], connections: int, duration: float) -> tuple[float, float]:
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
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000


def run_client_loop(url: str, headers: dict[str, str], args: argparse.Namespace) -> tuple[float, float]:
    """The fallback generator, in its own process so it does not share the server's loop."""
    code = (
        f"import asyncio, json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.serve import _client_loop; "
        f"print(json.dumps(asyncio.run(_client_loop({url!r}, {headers!r}, {args.connections:d}, {args.duration:f}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rps, p99 = json.loads(out)
    return rps, p99


def load(url: str, headers: dict[str, str], args: argparse.Namespace) -> tuple[float, float]:
    if shutil.which("wrk") and not args.python_client:
        return run_wrk(url, headers, args)
    return run_client_loop(url, headers, args)


# -- orchestration ---------------------------------------------------------------------------


def capture(url: str, path: Path) -> dict[str, str]:
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(request) as response:
        body = response.read()
        keep = ("Content-Type", "ETag", "Last-Modified", "Cache-Control", "Vary", "Link")
        headers = {k: response.headers[k] for k in keep if response.headers[k] is not None}
    path.write_text(json.dumps({"body": body.hex(), "headers": headers}))
    return headers | {"size": str(len(body))}


def measure(kind: str, port: int, arg: str, args: argparse.Namespace, etag: str) -> dict[str, tuple[float, float]]:
    url = f"http://127.0.0.1:{port}/feeds/{FEED}.atom"
    server = start_server(kind, port, arg)
    try:
        load(url, {}, argparse.Namespace(**{**vars(args), "duration": 1}))  # warm-up
        return {"200": load(url, {}, args), "304": load(url, {"If-None-Match": etag}, args)}
    finally:
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--python-client", action="store_true", help="use the aiohttp client loop even if wrk exists")
    parser.add_argument("--serve", choices=("real", "ceiling"), help=argparse.SUPPRESS)
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

    with tempfile.TemporaryDirectory() as tmp:
        embedded = None
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            embedded = EmbeddedRedis(Path(tmp) / "redis", persist=False)
            (Path(tmp) / "redis").mkdir()
            embedded.start()
            redis_url = embedded.url
        try:
            asyncio.run(seed(redis_url))
            port = free_port()
            # Capture what the real app serves, for the ceiling to replay byte for byte.
            server = start_server("real", port, redis_url)
            try:
                captured = capture(f"http://127.0.0.1:{port}/feeds/{FEED}.atom", Path(tmp) / "capture.json")
            finally:
                stop_server(server)
            generator = "wrk" if shutil.which("wrk") and not args.python_client else "aiohttp client loop"
            print(
                f"feed: {ITEMS} items, {int(captured['size']) // 1024} KiB Atom; load: {generator}, "
                f"{args.connections} connections, {args.duration:g}s per run"
            )
            real = measure("real", port, redis_url, args, captured["ETag"])
            ceiling = measure("ceiling", free_port(), str(Path(tmp) / "capture.json"), args, captured["ETag"])
        finally:
            if embedded is None:
                asyncio.run(unseed(redis_url))
            else:
                embedded.stop()
    print(f"{'path':<6}{'real req/s':>12}{'p99 ms':>9}{'ceiling req/s':>15}{'p99 ms':>9}{'ratio':>8}")
    for path in ("200", "304"):
        (r_rps, r_p99), (c_rps, c_p99) = real[path], ceiling[path]
        print(f"{path:<6}{r_rps:>12.0f}{r_p99:>9.2f}{c_rps:>15.0f}{c_p99:>9.2f}{r_rps / c_rps:>8.2f}")


if __name__ == "__main__":
    main()
