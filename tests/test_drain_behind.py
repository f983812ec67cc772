"""workers.ingest.behind: a worker stores what its polls queued while the rest of the batch is
still polling, once enough waits; one round at a time; a failing round never fails a poll."""

from __future__ import annotations

import asyncio
import functools

from aiohttp import web

from service import keys
from tests.conftest import DATA, ManualClock
from tests.feedserver import LocalServer
from tests.pollkit import poll_settings, resources
from tests.reliability.faults import eventually, holds
from workers.ingest import drain as ingest
from workers.ingest.behind import DrainBehind
from workers.poll.batch import poll_batch
from workers.poll.pipeline import PollStatus

RSS = (DATA / "e2e" / "news.rss").read_bytes()


class _Rounds:
    """A drain that counts its rounds; each waits for ``release`` (or fails, when told to)."""

    def __init__(self) -> None:
        self.count = 0
        self.ended = 0  # rounds that returned: DrainBehind decides on the next in the same step
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> None:
        self.count += 1
        await self.release.wait()
        self.ended += 1
        if self.fail:
            raise ConnectionError("Redis went away")


async def test_a_round_starts_once_enough_bytes_wait_however_few_the_articles() -> None:
    """Large articles fill the hand-off's bytes before its count: a round starts on either."""
    rounds = _Rounds()
    behind = DrainBehind(rounds, threshold=1000, threshold_bytes=1_000_000)
    behind.queued(3, 600_000)
    await asyncio.sleep(0)
    assert rounds.count == 0
    behind.queued(2, 400_000)
    await asyncio.sleep(0)
    assert rounds.count == 1  # 5 articles, but 1 MB of documents
    rounds.release.set()
    await eventually(holds(lambda: rounds.ended == 1), 2, "the round ended", every=0.01)
    assert rounds.count == 1  # nothing queued meanwhile: no second round
    await behind.close()


async def test_a_round_starts_once_enough_articles_wait_and_one_runs_at_a_time() -> None:
    rounds = _Rounds()
    behind = DrainBehind(rounds, threshold=10)
    behind.queued(4)
    behind.queued(5)
    await asyncio.sleep(0)
    assert rounds.count == 0  # 9 waiting: the batch's own drain will take them

    behind.queued(1)
    await asyncio.sleep(0)
    assert rounds.count == 1
    behind.queued(10)  # queued during the round: counted towards the next, not a second task
    behind.queued(10)
    await asyncio.sleep(0)
    assert rounds.count == 1

    rounds.release.set()
    await eventually(holds(lambda: rounds.ended == 2), 2, "a second round", every=0.01)  # for all that came meanwhile
    assert rounds.count == 2
    await behind.close()


async def test_a_failed_round_is_logged_and_the_next_kick_starts_again(caplog) -> None:  # type: ignore[no-untyped-def]
    rounds = _Rounds()
    rounds.fail = True
    rounds.release.set()
    behind = DrainBehind(rounds, threshold=1)
    behind.queued(1)
    await eventually(holds(lambda: "left to the next drain" in caplog.text), 2, "the failure logged", every=0.01)
    rounds.fail = False
    behind.queued(1)
    await eventually(holds(lambda: rounds.count == 2), 2, "a new round", every=0.01)
    await behind.close()


async def test_close_stops_a_round_in_progress() -> None:
    rounds = _Rounds()
    behind = DrainBehind(rounds, threshold=1)
    behind.queued(1)
    await eventually(holds(lambda: rounds.count == 1), 2, "a round", every=0.01)
    await behind.close()  # the round waits on its event forever: close cancels it and returns
    assert rounds.count == 1


class _HeldFeeds(LocalServer):
    """``/first`` answers at once; ``/second`` only once ``ready`` says so (or after 5 s)."""

    def __init__(self, ready: asyncio.Event) -> None:
        super().__init__()
        self.ready = ready
        self.second_waited = False

    def add_routes(self, app: web.Application) -> None:
        async def first(request: web.Request) -> web.Response:
            return web.Response(body=RSS, content_type="application/rss+xml")

        async def second(request: web.Request) -> web.Response:
            try:
                await asyncio.wait_for(self.ready.wait(), 5)
            except TimeoutError:
                self.second_waited = True
            return web.Response(body=RSS.replace(b"<title>", b"<title>Second: "), content_type="application/rss+xml")

        app.router.add_get("/first", first)
        app.router.add_get("/second", second)


async def test_a_batch_stores_the_first_polls_articles_while_a_later_poll_is_still_fetching(
    redis, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    ready = asyncio.Event()
    server = _HeldFeeds(ready)
    await server.start()
    settings = poll_settings(
        [
            {"id": "first", "url": f"http://127.0.0.1:{server.port}/first"},
            {"id": "second", "url": f"http://127.0.0.1:{server.port}/second"},
        ]
    )
    res = resources(settings, redis, clock)
    behind = DrainBehind(functools.partial(ingest.drain, res.redis, res.store, res.clock, "test-consumer"), threshold=1)
    res.on_queued = behind.queued

    async def first_stored() -> None:
        await eventually(lambda: redis.zcard(keys.source_index("first")), 5, "the first source stored", every=0.02)
        ready.set()  # only now may the second source answer

    watcher = asyncio.create_task(first_stored())
    try:
        reports = await poll_batch(res, settings.sources)
    finally:
        await behind.close()
        await res.session.close()
        await server.stop()
    await watcher
    assert [r.status for r in reports] == [PollStatus.FETCHED, PollStatus.FETCHED]
    assert not server.second_waited  # the first source's articles were stored mid-batch
    assert await redis.zcard(keys.source_index("first")) > 0
