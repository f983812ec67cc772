"""Claiming a Redis DB for the test suite, so that the suite never flushes data it did not write.

A DB belongs to the suite while it holds :data:`MARKER_KEY` with :data:`MARKER_VALUE`. The suite
claims an *empty* DB by writing the marker, and flushes a DB only while the marker is there:
one Lua call checks and flushes (then rewrites the marker), so nothing can slip in between. A
DB holding any key without the marker is refused and left exactly as it was.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio

MARKER_KEY = "tributary-test-suite:claim"
MARKER_VALUE = "this DB belongs to the Tributary test suite, which flushes it"

# Returns -1 when the DB is (now) the suite's and empty but for the marker, else its key count.
_CLAIM_AND_FLUSH = """
if redis.call('GET', KEYS[1]) == ARGV[1] or redis.call('DBSIZE') == 0 then
  redis.call('FLUSHDB')
  redis.call('SET', KEYS[1], ARGV[1])
  return -1
end
return redis.call('DBSIZE')
"""

# Leaves a DB of the suite's empty, marker included; a DB that is not the suite's is untouched.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('FLUSHDB')
end
return 0
"""


class ForeignData(Exception):
    """The DB holds keys the test suite did not write."""

    def __init__(self, location: str, db: int, keys: int):
        self.location = location
        self.db = db
        self.keys = keys
        super().__init__(
            f"refusing to flush {location} (DB {db}): it holds {keys} key(s) the test suite did not write; "
            "set TRIBUTARY_TEST_DB to the number of an empty DB, or unset REDIS_URL for an embedded Redis"
        )


def with_db(url: str, db: int) -> str:
    """``url`` pointing at DB ``db`` (a ``/N`` path for TCP, a ``db=N`` parameter for a unix socket)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join([*(q for q in parts.query.split("&") if q and not q.startswith("db=")), f"db={db}"])
        return f"unix://{parts.netloc}{parts.path}?{query}"  # urlunsplit would drop the empty authority
    return urlunsplit(parts._replace(path=f"/{db}"))


def _refused(client: redis.Redis | redis.asyncio.Redis, keys: int) -> ForeignData:
    # Built from the pool's settings, not the URL: no password can reach the message.
    settings = client.connection_pool.connection_kwargs
    db = int(settings.get("db") or 0)
    if "path" in settings:
        return ForeignData(f"unix://{settings['path']}?db={db}", db, keys)
    return ForeignData(f"redis://{settings.get('host', 'localhost')}:{settings.get('port', 6379)}/{db}", db, keys)


def claim(client: redis.Redis) -> None:
    """Flush the client's DB if it is empty or the suite's (leaving the marker); else raise ForeignData."""
    keys = client.eval(_CLAIM_AND_FLUSH, 1, MARKER_KEY, MARKER_VALUE)
    assert isinstance(keys, int), keys
    if keys >= 0:
        raise _refused(client, keys)


async def claim_async(client: redis.asyncio.Redis) -> None:
    """:func:`claim` for the asyncio client the tests use."""
    keys = await client.eval(_CLAIM_AND_FLUSH, 1, MARKER_KEY, MARKER_VALUE)  # type: ignore[misc]
    assert isinstance(keys, int), keys
    if keys >= 0:
        raise _refused(client, keys)


def release(client: redis.Redis) -> None:
    """At the end of a session: empty the DB, marker and all, if it is still the suite's."""
    client.eval(_RELEASE, 1, MARKER_KEY, MARKER_VALUE)
