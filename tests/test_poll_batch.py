"""The ``poll_batch`` job's path: many sources begun in one Redis call, polled concurrently,
ended as they answer; and the process's places for polls (:class:`InFlight`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from service import keys
from service.errors import ErrorKind
from tests.conftest import DATA, ManualClock
from tests.feedserver import FeedServer
from tests.pollkit import poll_settings, resources
from tests.reliability.faults import eventually, holds
from workers.fetch.in_flight import InFlight
from workers.poll.batch import poll_batch
from workers.poll.pipeline import PollStatus

RSS = (DATA / "e2e" / "news.rss").read_bytes()


async def test_a_batch_polls_each_source_once_with_the_right_state(
    redis, clock: ManualClock, feed_server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    same = [feed_server.set(f"/same{n}", RSS) for n in range(3)]  # answer 304 once they have validators
    changing = feed_server.set("/changing", RSS)
    broken = feed_server.set("/broken", "gone wrong", status=500)
    leased = feed_server.set("/leased", RSS)
    urls = {**{f"same{n}": url for n, url in enumerate(same)}, "changing": changing, "broken": broken, "leased": leased}
    settings = poll_settings([{"id": sid, "url": url} for sid, url in urls.items()])
    res = resources(settings, redis, clock)
    try:
        first = await poll_batch(res, settings.sources)
        assert [r.source_id for r in first] == list(urls)  # in order, each once
        assert {r.source_id: r.status for r in first}["broken"] is PollStatus.FAILED
        for path in ("/same0", "/same1", "/same2", "/changing", "/leased", "/broken"):
            assert len(feed_server.seen(path)) == 1

        clock.advance(600)
        feed_server.set("/changing", RSS.replace(b"<title>", b"<title>Changed: ", 2))
        await redis.set(keys.poll_lease("leased"), "another poll", px=60_000)  # another worker polls it now
        reports = {r.source_id: r for r in await poll_batch(res, settings.sources)}
    finally:
        await res.session.close()

    assert {sid: r.status for sid, r in reports.items()} == {
        "same0": PollStatus.NOT_MODIFIED,
        "same1": PollStatus.NOT_MODIFIED,
        "same2": PollStatus.NOT_MODIFIED,
        "changing": PollStatus.FETCHED,
        "broken": PollStatus.FAILED,
        "leased": PollStatus.BUSY,
    }
    assert reports["changing"].new + reports["changing"].updated > 0  # read in full (nothing drained yet)
    assert len(feed_server.seen("/leased")) == 1  # skipped: no request while another poll holds it
    assert [s.status for s in feed_server.seen("/same0")] == [200, 304]
    states = await res.store.sources.get_many(list(urls))
    due = await res.store.sources.schedule()
    for sid in ("same0", "same1", "same2", "changing"):
        assert states[sid].last_poll == clock() and states[sid].last_success == clock(), sid
        assert states[sid].consecutive_failures == 0 and states[sid].etag is not None
        assert due[sid] == (clock() + timedelta(seconds=600)).timestamp()
    assert states["broken"].consecutive_failures == 2 and states["broken"].last_error_kind is ErrorKind.SERVER
    assert states["leased"].last_poll == clock() - timedelta(seconds=600)  # untouched by the skipped poll
    assert await redis.get(keys.poll_lease("leased")) == b"another poll"  # its lease is not ours to free
    assert not [k for k in await redis.keys(keys.poll_lease("*")) if k != keys.poll_lease("leased").encode()]
    histories = {sid: await res.store.sources.history(sid) for sid in urls}
    assert [h.outcome for h in histories["same0"]] == ["not_modified", "modified"]
    assert len(histories["leased"]) == 1


async def test_a_batch_with_a_lapsed_claim_polls_nothing(redis, clock: ManualClock, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    settings = poll_settings([{"id": f"s{n}", "url": feed_server.set(f"/s{n}", RSS)} for n in range(2)])
    res = resources(settings, redis, clock)
    await res.store.sources.schedule_new(["s0", "s1"], clock())
    claims = await res.store.sources.claim_due(clock(), 120)
    clock.advance(121)  # the job started after its claim's lease ran out: another job has them
    try:
        reports = await poll_batch(res, settings.sources, claims[0].token)
    finally:
        await res.session.close()
    assert [r.status for r in reports] == [PollStatus.SUPERSEDED, PollStatus.SUPERSEDED]
    assert feed_server.requests == []


async def test_a_cancelled_batch_cancels_its_polls_and_frees_their_places(redis, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    """A job that times out cancels its batch: the polls in flight go with it (their leases and
    slots lapse on their own), and the process's places come back."""
    answer = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer.wait()  # never answers while the test runs
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = poll_settings([{"id": f"s{n}", "url": f"http://127.0.0.1:{port}/f{n}"} for n in range(3)])
    res = resources(settings, redis, clock)
    places = res.polls_in_flight()
    try:
        batch = asyncio.ensure_future(poll_batch(res, settings.sources))
        await eventually(holds(lambda: places.free == places.limit - 3), 2, "three polls in flight", every=0.01)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        await eventually(holds(lambda: places.free == places.limit), 2, "every place given back", every=0.01)
    finally:
        answer.set()
        server.close()
        await server.wait_closed()
        await res.session.close()


@pytest.mark.parametrize(
    ("limit", "asks", "expected"),
    [
        (10, [4, 4], [4, 4]),  # room for both
        (10, [25], [10]),  # a batch bigger than the places takes what there is
        (5, [3, 3], [3, 2]),  # the second takes the rest
    ],
)
async def test_places_are_taken_up_to_what_is_free(limit: int, asks: list[int], expected: list[int]) -> None:
    places = InFlight(limit)
    assert [await places.take(n) for n in asks] == expected
    assert places.free == limit - sum(expected)


async def test_a_waiter_takes_every_place_freed_in_the_turn() -> None:
    places = InFlight(3)
    assert await places.take(3) == 3
    waiting = asyncio.create_task(places.take(10))
    await asyncio.sleep(0)
    assert not waiting.done()
    places.give()
    places.give()
    assert await waiting == 2
    assert places.free == 0


async def test_places_freed_in_one_turn_wake_one_waiter_not_one_per_place() -> None:
    """A waiter woken takes every place freed before it runs: waking another per place freed
    meanwhile only had it find none left and wait again (a task step per poll for nothing)."""

    class Counted(InFlight):
        waits = 0

        async def _wait(self) -> None:
            self.waits += 1
            await super()._wait()

    places = Counted(3)
    assert await places.take(3) == 3
    waiting = [asyncio.create_task(places.take(10)) for _ in range(3)]
    await asyncio.sleep(0)
    for _ in range(3):
        places.give()
    assert await waiting[0] == 3
    await asyncio.sleep(0)
    assert places.waits == 3 and not waiting[1].done() and not waiting[2].done()
    places.give(2)  # the next in turn takes both
    assert await waiting[1] == 2
    places.give()
    assert await waiting[2] == 1


async def test_a_woken_waiter_cancelled_passes_its_turn_on() -> None:
    places = InFlight(1)
    assert await places.take(1) == 1
    first, second = asyncio.create_task(places.take(1)), asyncio.create_task(places.take(1))
    await asyncio.sleep(0)
    places.give()  # wakes the first, which is cancelled before it runs
    first.cancel()
    assert await second == 1
