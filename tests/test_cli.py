"""The operator's journey with the real command: `tributary run` on the embedded Redis, a
`tributary poll` from a second terminal reusing it, Ctrl-C leaving no redis-server behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import DATA
from tests.feedserver import FeedServer

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, feed_url: str, port: int) -> Path:
    config = tmp_path / "tributary.toml"
    config.write_text(
        f"""
[server]
port = {port}
base_url = "http://127.0.0.1:{port}"
[fetch]
allow_private_networks = true
[storage]
data_dir = "{tmp_path / "data"}"
[[sources]]
id = "local-rss"
url = "{feed_url}"
interval_seconds = 3600
tags = ["t"]
[[feeds]]
name = "t"
title = "Test"
tags = ["t"]
"""
    )
    return config


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.pop("REDIS_URL", None)  # exercise the embedded default
    return env


async def wait_for(url: str, predicate, timeout: float = 30) -> dict:  # type: ignore[no-untyped-def,type-arg]
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        data = await response.json(content_type=None)
                        if predicate(data):
                            return data
            except aiohttp.ClientError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{url} never satisfied the check within {timeout}s")
            await asyncio.sleep(0.2)


async def test_run_poll_and_clean_shutdown(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_url = feed_server.set("/news.rss", (DATA / "e2e" / "news.rss").read_bytes())
    port = free_port()
    config = write_config(tmp_path, feed_url, port)
    log = tmp_path / "run.log"
    with log.open("wb") as out:  # what a person at the terminal reads (text, as on a TTY)
        run = subprocess.Popen(
            [sys.executable, "-m", "tributary", "--log-format", "text", "run", "--config", str(config)],
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        listing = await wait_for(f"http://127.0.0.1:{port}/feeds", lambda d: d["feeds"] and d["feeds"][0]["items"] == 3)
        assert listing["feeds"][0]["updated"] == "2023-09-19T17:12:00Z"
        deadline = asyncio.get_running_loop().time() + 30
        while "1 source: 1 ok" not in log.read_text():  # the line after the first round
            assert asyncio.get_running_loop().time() < deadline, log.read_text()
            await asyncio.sleep(0.2)
        pid = int((tmp_path / "data" / "redis.pid").read_text())

        # A second terminal: reuses the running embedded Redis, polls now, reports counts.
        poll = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "tributary", "--config", str(config), "poll", "local-rss"],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert poll.returncode == 0, poll.stderr
        assert "local-rss: not_modified: 0 new, 0 updated, 0 unchanged" in poll.stdout
        assert "started embedded redis" not in poll.stderr
    finally:
        run.send_signal(signal.SIGINT)
        await asyncio.to_thread(run.wait, timeout=60)
    output = log.read_text(errors="replace")
    assert run.returncode == 0, output
    banner = output.splitlines()[:7]
    assert banner[0].startswith("Tributary ") and banner[1:] == [
        f"  config    {config}",
        f"  data dir  {tmp_path / 'data'}",
        f"  redis     unix://{tmp_path / 'data' / 'redis.sock'} (embedded, started here)",
        "  sources   1 source, 1 merged feed",
        f"  open      http://127.0.0.1:{port}/",
        f"  workers   1 process, 50 jobs each; readiness at http://127.0.0.1:{port}/readyz",
    ]
    assert "Traceback" not in output
    assert "stopped embedded redis" in output
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert (tmp_path / "data" / "appendonly.aof").exists() or any((tmp_path / "data").glob("appendonly*"))


def test_bad_config_fails_at_start_with_file_key_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[fetch]\ntimeout_seconds = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "tributary", "--config", str(config), "serve"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"{config}: fetch.timeout_seconds: Input should be greater than 0" in result.stderr
