"""Webhooks end to end: a local receiver, the real arq worker (burst) on a real Redis, the CLI.

Signed and sequenced deliveries that carry the change records; retries with backoff keeping the
sequence number; the delivery log; replay; the SSRF guard refusing a loopback callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from service import jobs
from service.config import Settings
from service.store.api_keys import ApiKeys
from service.store.articles import Store
from service.store.webhooks import WebhookStore
from tests.apikit import NOW, api_config, api_settings, article
from tributary.cli import main
from workers.settings import build_worker


class Receiver:
    """A partner's endpoint on 127.0.0.1: records what arrives, fails the first ``fail`` tries."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=503)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        assert server.runner is not None
        await server.runner.cleanup()


def local_sources() -> list[dict[str, Any]]:
    """The kit's sources at a closed local port: the worker's polls never leave the machine."""
    return [s | {"url": f"http://127.0.0.1:1/{s['id']}"} for s in api_config()["sources"]]


def hook_settings(private: bool = True) -> Settings:
    return api_settings(
        sources=local_sources(),
        fetch={"allow_private_networks": private, "timeout_seconds": 5},
        api={"webhook_allow_http": True, "webhook_retry_base_seconds": 0.02, "webhook_attempts": 4, "webhook_batch": 3},
    )


async def run_deliveries(settings: Settings, redis_url: str, redis: Any, webhook_id: str) -> None:
    await jobs.enqueue(redis, "webhook_deliver", webhook_id, job_id=f"webhook:{webhook_id}")
    worker = build_worker(settings, redis_url, burst=True, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def add_hook(redis: Any, url: str, **options: Any) -> tuple[str, str]:
    await ApiKeys(redis).create("partner", NOW, feeds=options.pop("feeds", ()))
    hook = await WebhookStore(redis).add("partner", url, "0-0", NOW, **options)
    return hook.id, hook.secret


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in headers["Tributary-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(fields["v1"], expected)


async def test_deliveries_are_signed_sequenced_and_carry_the_records(redis, redis_url, receiver) -> None:  # type: ignore[no-untyped-def]
    settings = hook_settings()
    store = Store(redis, settings)
    for n in range(1, 6):
        await store.upsert(article(n, "alpha" if n != 4 else "beta"), NOW)
    await store.remove_article(f"{2:032x}", NOW)
    hook_id, secret = await add_hook(redis, receiver.url, feeds=["tech"])
    await run_deliveries(settings, redis_url, redis, hook_id)
    bodies = receiver.bodies()
    assert [b["seq"] for b in bodies] == [1, 2]  # batches of 3
    assert all(verify(secret, headers, body) for headers, body in receiver.received)
    assert [h["Tributary-Sequence"] for h, _ in receiver.received] == ["1", "2"]
    records = [(int(r["id"], 16), r["kind"]) for b in bodies for r in b["changes"]]
    assert records == [(1, "created"), (2, "created"), (3, "created"), (5, "created"), (2, "removed")]  # 4 is beta's
    assert not verify("another secret", *receiver.received[0])
    log = await WebhookStore(redis).deliveries(hook_id)
    assert [(d.seq, d.outcome, d.status) for d in log] == [(2, "delivered", 204), (1, "delivered", 204)]
    hook = await WebhookStore(redis).get(hook_id)
    assert hook is not None and hook.seq == 2 and hook.failures == 0


async def test_a_failing_receiver_gets_the_same_delivery_again_after_backoff(redis, redis_url, receiver) -> None:  # type: ignore[no-untyped-def]
    settings = hook_settings()
    store = Store(redis, settings)
    await store.upsert(article(1), NOW)
    hook_id, _secret = await add_hook(redis, receiver.url)
    receiver.fail = 2
    await run_deliveries(settings, redis_url, redis, hook_id)
    assert [json.loads(body)["seq"] for _, body in receiver.received] == [1, 1, 1]
    log = await WebhookStore(redis).deliveries(hook_id)
    assert [(d.seq, d.attempt, d.outcome, d.status) for d in reversed(log)] == [
        (1, 1, "failed", 503),
        (1, 2, "failed", 503),
        (1, 3, "delivered", 204),
    ]
    await store.upsert(article(2), NOW)
    await run_deliveries(settings, redis_url, redis, hook_id)
    assert [json.loads(body)["seq"] for _, body in receiver.received][-1] == 2


def cli(*args: str, env: dict[str, str]) -> Any:
    """The real command, in a thread: it runs its own event loop."""
    return asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def test_replay_from_the_cli_resends_with_new_sequence_numbers(
    redis, redis_url, receiver, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = hook_settings()
    store = Store(redis, settings)
    for n in (1, 2):
        await store.upsert(article(n), NOW)
    hook_id, _ = await add_hook(redis, receiver.url, feed="tech")
    await run_deliveries(settings, redis_url, redis, hook_id)
    config = tmp_path / "tributary.toml"
    config.write_text(toml(api_config(sources=local_sources(), api={"webhook_allow_http": True})))
    env = {"REDIS_URL": redis_url}
    result = await cli("webhooks", "replay", hook_id, "--from-oldest", "--config", str(config), env=env)
    assert result.exit_code == 0, result.output
    await run_deliveries(settings, redis_url, redis, hook_id)
    bodies = receiver.bodies()
    assert [b["seq"] for b in bodies] == [1, 2]
    assert [r["cursor"] for r in bodies[0]["changes"]] == [r["cursor"] for r in bodies[1]["changes"]]
    listing = await cli("webhooks", "list", "--config", str(config), env=env)
    assert hook_id in listing.output and "seq=2" in listing.output and "127.0.0.1" in listing.output
    log = await cli("webhooks", "log", hook_id, "--config", str(config), env=env)
    assert log.output.count("delivered") == 2
    bad = await cli("webhooks", "replay", hook_id, "--cursor", "forged", "--config", str(config), env=env)
    assert bad.exit_code != 0 and "cursor" in bad.output


async def test_the_ssrf_guard_refuses_a_loopback_callback(redis, redis_url, receiver) -> None:  # type: ignore[no-untyped-def]
    settings = hook_settings(private=False)
    await Store(redis, settings).upsert(article(1), NOW)
    hook_id, _ = await add_hook(redis, receiver.url)
    await run_deliveries(settings, redis_url, redis, hook_id)
    assert receiver.received == []
    log = await WebhookStore(redis).deliveries(hook_id)
    assert log and all(d.outcome == "failed" and d.error and "SSRF" in d.error for d in log)
    hook = await WebhookStore(redis).get(hook_id)
    assert hook is not None and hook.paused_until is not None and hook.seq == 0


def toml(data: dict[str, Any]) -> str:
    import tomli_w

    return tomli_w.dumps(data)


def test_webhooks_add_refuses_plain_http_and_unknown_keys(redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "tributary.toml"
    config.write_text(toml(api_config()))
    env = {"REDIS_URL": redis_url}
    plain = CliRunner().invoke(
        main, ["webhooks", "add", "partner", "http://x.example/h", "--config", str(config)], env=env
    )
    assert plain.exit_code != 0 and "https" in plain.output
    unknown = CliRunner().invoke(
        main, ["webhooks", "add", "nobody", "https://x.example/h", "--config", str(config)], env=env
    )
    assert unknown.exit_code != 0 and "no key named" in unknown.output
