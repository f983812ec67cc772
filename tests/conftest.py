"""Shared fixtures: a real Redis on a DB the suite owns, a local feed server, a manual clock, and
the corpora. Nothing here mocks Redis or HTTP.

Redis, and the rule that keeps the suite from destroying data:

- ``REDIS_URL`` unset (the default): each session starts its own embedded redis-server in a
  temporary directory and stops it at the end. Nothing else can see it.
- ``REDIS_URL`` set (CI, or your own Redis): the suite uses DB ``TRIBUTARY_TEST_DB`` (default
  13) of that server, whatever DB the URL names, and flushes it before and after every test.
- The suite flushes a DB only if it is empty or carries the suite's marker key (see
  ``tests/dbclaim.py``): it claims an empty DB by writing the marker and releases it empty at
  the end. A DB holding keys the suite did not write stops the session at once, naming the
  URL, the DB and the key count; choose another DB with ``TRIBUTARY_TEST_DB=N``. Tests never
  FLUSHDB themselves: they call :func:`reset_db`.

Corpora of real feeds and pages are read in place from ``../shared/corpora`` beside the
repository (:data:`CORPORA`); tests that need them skip, naming that path, where it is absent.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import hypothesis
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from service.errors import ParseError
from service.store.embedded_redis import EmbeddedRedis
from tests.dbclaim import ForeignData, claim, claim_async, release, with_db
from tests.feedserver import FeedServer
from tests.subscriber import Subscriber
from workers.parse import ParsedFeed, parse_feed

# Property-based tests (tests/reliability/test_fuzz.py): the default profile is bounded and
# derandomised, so CI runs are short and reproducible. For a longer local hunt with fresh
# examples each run: pytest tests/reliability/test_fuzz.py --hypothesis-profile=fuzz-long
hypothesis.settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large],
    print_blob=True,
)
hypothesis.settings.register_profile(
    "fuzz-long", hypothesis.settings.get_profile("ci"), max_examples=3000, derandomize=False
)
hypothesis.settings.load_profile("ci")

DATA = Path(__file__).parent / "data"
TEST_DB = int(os.environ.get("TRIBUTARY_TEST_DB", "13"))
REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = REPO_ROOT.parent / "shared" / "corpora"


def corpus(*parts: str) -> Path:
    """``CORPORA/parts``; skips the calling test, naming the expected path, where it is absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus not found: expected {path} (../shared/corpora beside the repository)")
    return path


FEED_SUITES = ("feedparser-tests/tests", "lemon24-reader-testdata", "w3c-feedvalidator-testcases/testcases")
FEED_SUFFIXES = {".xml", ".json", ".rss", ".atom", ".rdf"}
CORPUS_FEED_URL = "https://corpus.example.com/feeds/feed"


@dataclass(frozen=True)
class CorpusInput:
    """One feed-like corpus file as :func:`parse_feed` read it: a feed, or why there is none."""

    path: Path
    """Relative to :data:`CORPORA`."""
    feed: ParsedFeed | None = None
    error: ParseError | None = None


@pytest.fixture(scope="session")
def corpus_inputs() -> list[CorpusInput]:
    """Every feed-like file of the feed suites, parsed once per session (as from :data:`CORPUS_FEED_URL`)."""
    corpora = corpus()
    roots = [corpora / suite for suite in FEED_SUITES if (corpora / suite).is_dir()]
    if not roots:
        pytest.skip(f"none of {', '.join(FEED_SUITES)} under {corpora}")
    inputs = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in FEED_SUFFIXES and p.is_file()):
            content_type = "application/json" if path.suffix.lower() == ".json" else "application/xml"
            try:
                feed = parse_feed(path.read_bytes(), source_id="corpus", url=CORPUS_FEED_URL, content_type=content_type)
            except ParseError as exc:
                inputs.append(CorpusInput(path.relative_to(corpora), error=exc))
            else:
                inputs.append(CorpusInput(path.relative_to(corpora), feed=feed))
    return inputs


def refuse(exc: ForeignData) -> NoReturn:
    pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


@contextmanager
def claimed(url: str) -> Iterator[str]:
    client = redis_sync.Redis.from_url(url)
    try:
        try:
            claim(client)
        except ForeignData as exc:
            refuse(exc)
        yield url
        release(client)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DB ``TRIBUTARY_TEST_DB`` of ``REDIS_URL`` (CI), else of an embedded redis-server, claimed."""
    if os.environ.get("REDIS_URL"):
        with claimed(with_db(os.environ["REDIS_URL"], TEST_DB)) as url:
            yield url
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    embedded.start()
    try:
        with claimed(with_db(embedded.url, TEST_DB)) as url:
            yield url
    finally:
        embedded.stop()


@pytest.fixture(scope="session", autouse=True)
def commands_use_the_suites_db(request: pytest.FixtureRequest) -> Iterator[None]:
    """Commands the tests run in this process (``CliRunner``) or start read ``REDIS_URL``: while
    it is set, it names the suite's claimed DB for the session, never the DB the user gave, whose
    data is not the suite's (``import-opml`` would schedule its sources there)."""
    given = os.environ.get("REDIS_URL")
    if not given:
        yield  # commands start their own embedded Redis under each test's data dir
        return
    os.environ["REDIS_URL"] = request.getfixturevalue("redis_url")
    try:
        yield
    finally:
        os.environ["REDIS_URL"] = given


async def reset_db(client: Redis) -> None:
    """Empty the suite's DB (its marker stays); stops the session if the DB is no longer the suite's."""
    try:
        await claim_async(client)
    except ForeignData as exc:
        refuse(exc)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client on the suite's DB, empty but for the marker when the test starts, and emptied after it."""
    client = Redis.from_url(redis_url)
    await reset_db(client)
    try:
        yield client
    finally:
        await reset_db(client)
        await client.aclose()


class ManualClock:
    """The injected clock: tests move time explicitly instead of sleeping."""

    def __init__(self, start: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    """A local WebSub subscriber (tests/subscriber.py) on 127.0.0.1."""
    server = Subscriber()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
