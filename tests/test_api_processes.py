"""The operator's and partner's journey with real processes: `tributary keys create` prints a key,
two `tributary serve` processes share one Redis and so one token bucket per key (429 from
either), `keys revoke` shuts the key out of both."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import tomli_w

from tests.apikit import api_config
from tests.test_cli import free_port

pytestmark = pytest.mark.slow


def cli_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    return env | {"REDIS_URL": redis_url}


def tributary(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tributary", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def wait_until_up(url: str, deadline: float = 30) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    async with aiohttp.ClientSession() as session:
        while loop.time() < end:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


async def test_keys_cli_and_a_rate_limit_shared_by_two_web_processes(redis, redis_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ports = [free_port(), free_port()]
    configs = []
    for port in ports:
        config = tmp_path / f"tributary-{port}.toml"
        config.write_text(tomli_w.dumps(api_config(server={"port": port, "base_url": f"http://127.0.0.1:{port}"})))
        configs.append(config)
    env = cli_env(redis_url)
    created = tributary(
        "keys", "create", "partner", "--feeds", "tech", "--rate", "3", "--config", str(configs[0]), env=env
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.split()[-1]
    assert token.startswith("trib_")
    assert "partner" in tributary("keys", "list", "--config", str(configs[0]), env=env).stdout
    assert token not in tributary("keys", "list", "--config", str(configs[0]), env=env).stdout
    bad = tributary("keys", "create", "other", "--feeds", "nope", "--config", str(configs[0]), env=env)
    assert bad.returncode != 0 and "nope" in bad.stderr

    servers = [
        subprocess.Popen([sys.executable, "-m", "tributary", "serve", "--config", str(c)], env=env) for c in configs
    ]
    try:
        for port in ports:
            await wait_until_up(f"http://127.0.0.1:{port}/healthz")
        headers = {"Authorization": f"Bearer {token}"}
        statuses = []
        async with aiohttp.ClientSession() as session:
            for port in (ports[0], ports[1], ports[0], ports[1]):
                async with session.get(f"http://127.0.0.1:{port}/api/v1/feeds", headers=headers) as response:
                    statuses.append((response.status, response.headers.get("Retry-After")))
                    body = await response.json(content_type=None)
            assert [s for s, _ in statuses] == [200, 200, 200, 429]
            assert statuses[-1][1] is not None and body["type"] == "urn:tributary:problem:rate-limited"
            revoked = tributary("keys", "revoke", "partner", "--config", str(configs[1]), env=env)
            assert revoked.returncode == 0 and "revoked" in revoked.stdout
            for port in ports:
                async with session.get(f"http://127.0.0.1:{port}/api/v1/feeds", headers=headers) as response:
                    assert response.status == 401
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
