"""The per-host politeness budget, shared through Redis: concurrency, rate, pause."""

from __future__ import annotations

from service.config import FetchConfig
from service.store.host_slots import Slot, Verdict
from workers.fetch.host_budget import Deferred, HostBudget
from workers.poll.pipeline import host_of


async def test_at_most_k_concurrent_requests_per_host(redis) -> None:  # type: ignore[no-untyped-def]
    budget = HostBudget(redis, FetchConfig(host_concurrency=2, host_requests_per_minute=600))
    other_worker = HostBudget(redis, FetchConfig(host_concurrency=2, host_requests_per_minute=600))
    first, second = (await budget.try_acquire("a.example"))[2], (await other_worker.try_acquire("a.example"))[2]
    assert first and second
    verdict, wait, slot = await budget.try_acquire("a.example")
    assert verdict is Verdict.BUSY and slot is None and wait <= 0.1
    assert (await budget.try_acquire("b.example"))[0] is Verdict.GRANTED  # other hosts are unaffected
    await other_worker.release(second)
    assert (await budget.try_acquire("a.example"))[0] is Verdict.GRANTED


async def test_requests_per_minute_is_a_token_bucket(redis) -> None:  # type: ignore[no-untyped-def]
    budget = HostBudget(redis, FetchConfig(host_concurrency=10, host_requests_per_minute=12), max_wait_seconds=0.5)
    granted = [await budget.try_acquire("h") for _ in range(3)]
    assert [v for v, _, _ in granted] == [Verdict.GRANTED, Verdict.GRANTED, Verdict.RATE_LIMITED]
    assert 4 < granted[2][1] <= 5  # 12/min: one token every 5 s
    deferred = await budget.acquire("h")
    assert isinstance(deferred, Deferred) and deferred.verdict is Verdict.RATE_LIMITED


async def test_pause_applies_to_the_whole_host_and_only_lengthens(redis) -> None:  # type: ignore[no-untyped-def]
    budget = HostBudget(redis, FetchConfig())
    await budget.pause("h", 120)
    await budget.pause("h", 10)  # a shorter Retry-After does not cut a longer pause
    assert 119 < await budget.paused_for("h") <= 120
    outcome = await budget.acquire("h")
    assert isinstance(outcome, Deferred) and outcome.verdict is Verdict.PAUSED and outcome.wait_seconds > 119
    assert isinstance(await budget.acquire("other"), Slot)


async def test_a_dead_workers_slot_expires(redis) -> None:  # type: ignore[no-untyped-def]
    budget = HostBudget(redis, FetchConfig(host_concurrency=1))
    budget.slot_ms = 50
    assert isinstance(await budget.acquire("h"), Slot)  # never released
    assert isinstance(await budget.acquire("h"), Slot)  # waited for the slot's expiry


async def test_batched_calls_survive_an_unknown_script(redis) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    budget = HostBudget(redis, FetchConfig(host_concurrency=100, host_requests_per_minute=6000))
    first = await asyncio.gather(*(budget.try_acquire(f"h{n % 3}") for n in range(30)))
    assert all(v is Verdict.GRANTED for v, _, _ in first)
    await redis.script_flush()  # Redis forgets every script, as after a restart
    again = await asyncio.gather(*(budget.try_acquire("h0") for _ in range(5)))
    assert all(v is Verdict.GRANTED for v, _, _ in again)


def test_a_host_name_with_control_characters_takes_no_host_budget() -> None:
    """A poll's arguments travel joined by a control character; no host name may carry one."""
    assert host_of("http://news.example/feed") == "news.example"
    assert host_of("http://a\x1fb.example/feed") == ""
