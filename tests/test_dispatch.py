"""The dispatcher (``dispatch_due``, once a second): every due source becomes part of one
``poll_batch`` job, several claims a tick when more than one claim's worth is due, and no more
once the queue holds enough work for the workers."""

from __future__ import annotations

from arq.connections import ArqRedis
from arq.jobs import Job
from redis.asyncio import Redis

from service import keys
from tests.conftest import ManualClock
from tests.pollkit import poll_settings, resources
from workers.tasks import DISPATCH_BATCH, MAX_QUEUED_POLLS, POLL_BATCH, dispatch_due

QUEUE = "trib:test:dispatch-queue"


async def dispatch(redis: Redis, clock: ManualClock, sources: int) -> tuple[int, list[list[str]]]:
    settings = poll_settings([{"id": f"s{n}", "url": f"https://example.org/{n}.xml"} for n in range(sources)])
    res = resources(settings, redis, clock)
    await redis.zadd(keys.SCHEDULE, {s.id: 0 for s in settings.sources})
    arq = ArqRedis(connection_pool=redis.connection_pool)
    try:
        dispatched = await dispatch_due({"resources": res, "redis": arq, "queue_name": QUEUE})
        jobs = [Job(job_id.decode(), arq, _queue_name=QUEUE) for job_id in await redis.zrange(QUEUE, 0, -1)]
        infos = [await job.info() for job in jobs]
        return dispatched, [list(info.args[0]) for info in infos if info is not None]
    finally:
        await res.session.close()


async def test_every_due_source_once_across_several_claims(redis: Redis, clock: ManualClock) -> None:
    due = 2 * DISPATCH_BATCH + 30  # three claims in one tick
    dispatched, batches = await dispatch(redis, clock, due)
    assert dispatched == due
    polled = [source_id for batch in batches for source_id in batch]
    assert sorted(polled) == sorted(f"s{n}" for n in range(due))  # each once
    assert max(len(batch) for batch in batches) == POLL_BATCH
    assert not await redis.zrangebyscore(keys.SCHEDULE, "-inf", clock().timestamp())  # none left due


async def test_stops_claiming_once_the_queue_holds_enough(redis: Redis, clock: ManualClock) -> None:
    due = MAX_QUEUED_POLLS + 2 * DISPATCH_BATCH
    dispatched, batches = await dispatch(redis, clock, due)
    assert dispatched == MAX_QUEUED_POLLS  # whole claims until the queue is full
    assert sum(len(batch) for batch in batches) == MAX_QUEUED_POLLS
    left = await redis.zrangebyscore(keys.SCHEDULE, "-inf", clock().timestamp())
    assert len(left) == due - MAX_QUEUED_POLLS  # still due, unclaimed: the next tick's
