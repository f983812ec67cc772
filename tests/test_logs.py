"""Log lines: JSON off a terminal, one readable line on it, the ids of the job, source and
request they are about, and never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from service.logs import (
    JsonFormatter,
    TextFormatter,
    bind_job,
    bind_request,
    bind_source,
    configure_logging,
    redact,
    request_id,
)

SECRETS = [
    ("redis://:hunter2secret@redis.internal:6379/0", "hunter2secret"),
    ("REDIS_URL=rediss://default:p4ss-w0rd@cache:6380/1 refused", "p4ss-w0rd"),
    ("Authorization: Bearer trib_AbCdEfGh1234567890xyz", "AbCdEfGh1234567890xyz"),
    ("headers={'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA=="),
    ("created key partner trib_q1w2e3r4t5y6u7i8o9p0", "q1w2e3r4t5y6u7i8o9p0"),
    ("hub.mode=subscribe&hub.secret=s3cr3t-value-123&hub.topic=x", "s3cr3t-value-123"),
    ('{"secret": "whsec-9f8e7d6c5b4a", "url": "https://example.com/hook"}', "whsec-9f8e7d6c5b4a"),
    ("cursor_secret=abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
    ("verify deliveries with the signing secret Zm9vYmFyYmF6cXV4cXV1eA", "Zm9vYmFyYmF6cXV4cXV1eA"),
    ("api_key=AKIA1234567890ABCDEF&x=1", "AKIA1234567890ABCDEF"),
    ("request headers: X-Api-Key: k-5e6f7a8b9c", "k-5e6f7a8b9c"),
    ("TRIBUTARY_API__CURSOR_SECRET=0123456789abcdef0123", "0123456789abcdef0123"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_redact_removes_the_secret_and_keeps_the_rest(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert "***" in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "polled bbc-world: fetched, 20 new, 0 updated, 0 unchanged",
        "redis unavailable (Error 111 connecting to 127.0.0.1:6379. Connection refused.)",
        "https://feeds.example.com/rss?page=2&tag=world",
        "unix:///srv/tributary/data/redis.sock",
    ],
)
def test_redact_leaves_ordinary_lines_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    logger = logging.getLogger("tests.logs")
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((json_out, JsonFormatter()), (text_out, TextFormatter())):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        handlers.append(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, json_out, text_out
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.propagate = True


async def test_a_job_line_carries_its_job_and_source(captured: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, json_out, text_out = captured

    async def job() -> None:  # a task, like an arq job: its ids stay in it
        bind_job("poll:bbc-world:1795790132")
        bind_source("bbc-world")
        logger.warning("poll of %s failed: %s", "bbc-world", "redis://:pw123456@r:6379 refused")

    await asyncio.create_task(job())
    line = json.loads(json_out.getvalue())
    assert line["level"] == "warning" and line["logger"] == "tests.logs"
    assert line["job_id"] == "poll:bbc-world:1795790132" and line["source_id"] == "bbc-world"
    assert "pw123456" not in line["msg"] and line["ts"].endswith("Z") and isinstance(line["pid"], int)
    text = text_out.getvalue()
    assert " WARNING tests.logs [job=poll:bbc-world:1795790132 source=bbc-world] poll of bbc-world failed" in text
    assert "pw123456" not in text

    logger.info("outside any job")  # the task's ids did not leak out of it
    assert "job_id" not in json.loads(json_out.getvalue().splitlines()[-1])


async def test_a_request_line_carries_the_request_id(captured: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, json_out, _ = captured
    given = make_mocked_request("GET", "/feeds/x.atom", headers={"X-Request-Id": "abc-123"})
    odd = make_mocked_request("GET", "/", headers={"X-Request-Id": "<script>"})

    async def handle(request: web.Request) -> str:
        bind_request(request)
        logger.error("failed")
        return request_id(request)

    assert await asyncio.create_task(handle(given)) == "abc-123"
    made = await asyncio.create_task(handle(odd))
    assert made != "<script>" and len(made) == 16
    ids = [json.loads(line)["request_id"] for line in json_out.getvalue().splitlines()]
    assert ids == ["abc-123", made]


def test_a_traceback_is_one_json_field_and_redacted(captured: tuple[logging.Logger, io.StringIO, io.StringIO]) -> None:
    logger, json_out, _ = captured
    try:
        raise ValueError("cannot use redis://:topsecret99@host:6379/0")
    except ValueError:
        logger.exception("broke")
    line = json.loads(json_out.getvalue())
    assert "ValueError" in line["exc"] and "topsecret99" not in line["exc"]
    assert len(json_out.getvalue().strip().splitlines()) == 1


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        assert configure_logging("INFO", "auto", Terminal()) == "text"
        assert configure_logging("INFO", "auto", io.StringIO()) == "json"
        assert configure_logging("INFO", "text", io.StringIO()) == "text"
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
