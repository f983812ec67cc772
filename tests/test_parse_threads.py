"""CPU-bound work leaves the event loop for the worker's own parse threads, with the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from service.config import settings_from_dict
from service.store.articles import Store
from workers.fetch.client import new_session
from workers.resources import Resources

REQUEST = contextvars.ContextVar("request", default="none")


async def test_off_loop_runs_in_the_parse_pool_with_the_callers_context(redis, clock) -> None:  # type: ignore[no-untyped-def]
    settings = settings_from_dict({"worker": {"parse_threads": 2}})
    res = Resources(settings, redis, Store(redis, settings), new_session(settings.fetch), clock)
    REQUEST.set("poll-42")

    def work(n: int, *, times: int) -> tuple[str, str, int]:
        return threading.current_thread().name, REQUEST.get(), n * times

    try:
        name, seen, product = await res.off_loop(work, 6, times=7)
        assert name.startswith("parse") and seen == "poll-42" and product == 42
        # [worker] parse_threads = 2: two works meet at a barrier (one thread could not), and six
        # works never take more than two threads.
        barrier = threading.Barrier(2, timeout=5)

        def meet() -> str:
            barrier.wait()
            return threading.current_thread().name

        names = await asyncio.gather(*(res.off_loop(meet) for _ in range(6)))
        assert len(set(names)) == 2
    finally:
        res.close()
        await res.session.close()
