"""The small pure parts of running unattended: backoff, the outage log, the job wrapper."""

from __future__ import annotations

import logging

import pytest
from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.backoff import backoff_seconds
from service.store.availability import Outage, describe
from workers.runtime import OUTAGE_KEY, job


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.0, 0.0),
        (1, 0.0, 0.5),
        (2, 0.0, 1.0),
        (4, 0.0, 2.0),  # capped
        (40, 0.0, 2.0),
        (2, 1.0, 0.5),  # half of it taken off at most
        (1, 0.5, 0.375),
    ],
)
def test_backoff(attempt: int, rand: float, expected: float) -> None:
    assert backoff_seconds(attempt, base=0.5, cap=2.0, jitter=0.5, rand=lambda: rand) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_two_log_lines_however_many_calls_fail(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = Outage(logging.getLogger("tests.outage"), "workers wait", probe_seconds=1.0, monotonic=clock)
    with caplog.at_level(logging.INFO, logger="tests.outage"):
        assert outage.may_try()
        for _ in range(50):
            outage.failed(RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
        assert outage.down and not outage.may_try()  # within probe_seconds of the last try
        clock.now += 1.0
        assert outage.may_try() and not outage.may_try()  # one caller finds out, the others do not wait
        clock.now += 4.0
        outage.succeeded()
        outage.succeeded()
    refused = "Error 111 connecting to 127.0.0.1:6379. Connection refused."
    assert [r.getMessage() for r in caplog.records] == [
        f"redis unavailable ({refused}); workers wait until it is back",
        "redis is back after 5.0 s",
    ]
    assert outage.may_try()


def test_describe() -> None:
    assert describe(TimeoutError()) == "no answer in time"
    assert describe(RedisTimeoutError("Timeout reading from socket")) == "Timeout reading from socket"
    assert describe(OSError()) == "OSError"


async def test_a_job_ends_quietly_or_asks_to_be_retried_when_redis_is_away(caplog: pytest.LogCaptureFixture) -> None:
    async def fails(ctx: dict[str, object], source_id: str) -> str:
        raise RedisConnectionError("Connection reset by peer")

    outage = Outage(logging.getLogger("tests.jobs"), "workers wait")
    ctx = {OUTAGE_KEY: outage, "job_id": "poll:a:1", "job_try": 2}
    with caplog.at_level(logging.WARNING, logger="tests.jobs"):
        assert await job(fails, on_outage="end", names_source=True)(ctx, "a") is None
        with pytest.raises(Retry) as retry:
            await job(fails, on_outage="retry")(ctx, "a")
    assert 5_000 <= (retry.value.defer_score or 0) <= 10_000  # 5 s doubled for the second try, less jitter
    assert len(caplog.records) == 1 and not caplog.records[0].exc_info


async def test_a_job_lets_other_errors_through() -> None:
    async def broken(ctx: dict[str, object]) -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await job(broken, on_outage="end")({OUTAGE_KEY: Outage(logging.getLogger("x"), "")})
