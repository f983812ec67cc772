"""The suite never flushes data it did not write (tests/dbclaim.py, the rule in conftest).

These run against a redis-server of their own, started in a temporary directory, so they can
put foreign keys in a DB without going near the session's DB or anyone else's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis
from redis.asyncio import Redis

from service.store.embedded_redis import EmbeddedRedis
from tests.conftest import REPO_ROOT, TEST_DB
from tests.dbclaim import MARKER_KEY, ForeignData, claim, release, with_db

DB = 3


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("claim-redis"), persist=False)
    embedded.start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


@pytest.fixture
def db(own_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(with_db(own_server, DB))
    client.flushall()  # the server is this module's alone
    try:
        yield client
    finally:
        client.close()


def test_an_empty_db_is_claimed(db: redis.Redis) -> None:
    claim(db)
    assert db.keys("*") == [MARKER_KEY.encode()]


def test_a_db_with_a_foreign_key_is_refused_and_keeps_it(db: redis.Redis) -> None:
    db.set("someone:else", "precious")
    with pytest.raises(ForeignData) as refused:
        claim(db)
    assert (refused.value.db, refused.value.keys) == (DB, 1)
    assert f"(DB {DB}): it holds 1 key(s) the test suite did not write" in str(refused.value)
    assert "TRIBUTARY_TEST_DB" in str(refused.value)
    assert db.keys("*") == [b"someone:else"] and db.get("someone:else") == b"precious"


def test_the_suites_own_db_is_flushed_and_stays_claimed(db: redis.Redis) -> None:
    claim(db)
    db.set("trib:article:1", "written by a test")
    claim(db)
    assert db.keys("*") == [MARKER_KEY.encode()]


def test_release_empties_the_suites_db_and_nothing_else(db: redis.Redis) -> None:
    claim(db)
    db.set("trib:article:1", "written by a test")
    release(db)
    assert db.dbsize() == 0
    db.set("someone:else", "precious")
    release(db)
    assert db.get("someone:else") == b"precious"


def test_the_refusal_names_no_password(own_server: str, db: redis.Redis) -> None:
    db.set("someone:else", "precious")
    db.config_set("requirepass", "s3cret")
    guarded = redis.Redis.from_url(with_db(own_server, DB) + "&password=s3cret")
    try:
        with pytest.raises(ForeignData) as refused:
            claim(guarded)
        assert str(refused.value).startswith(f"refusing to flush {with_db(own_server, DB)} (DB {DB})")
        assert "s3cret" not in str(refused.value)
    finally:
        guarded.config_set("requirepass", "")
        guarded.close()


async def test_the_redis_fixture_hands_out_the_suites_db(redis: Redis) -> None:
    assert await redis.keys("*") == [MARKER_KEY.encode()]


def run_session(server: str, db: int) -> subprocess.CompletedProcess[str]:
    """A pytest session of one Redis test, pointed by REDIS_URL at DB ``db`` of ``server``."""
    env = os.environ | {"REDIS_URL": server, "TRIBUTARY_TEST_DB": str(db)}
    node = "tests/test_dbclaim.py::test_the_redis_fixture_hands_out_the_suites_db"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_a_session_refuses_a_db_holding_foreign_keys_and_leaves_them(own_server: str, db: redis.Redis) -> None:
    db.set("someone:else", "precious")
    session = run_session(own_server, DB)
    output = session.stdout + session.stderr
    assert session.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert f"refusing to flush {with_db(own_server, DB)} (DB {DB}): it holds 1 key(s)" in output
    assert db.keys("*") == [b"someone:else"]


@pytest.mark.slow
def test_a_session_claims_an_empty_db_and_leaves_it_empty(own_server: str, db: redis.Redis) -> None:
    session = run_session(own_server, DB)
    assert session.returncode == 0, session.stdout + session.stderr
    assert db.dbsize() == 0


def test_commands_run_by_the_suite_see_its_db_not_the_one_given() -> None:
    """``REDIS_URL`` as commands run in this process read it (the session fixture in conftest)."""
    url = os.environ.get("REDIS_URL")
    if url is None:
        pytest.skip("REDIS_URL not set: commands start their own embedded Redis")
    assert url == with_db(url, TEST_DB)
