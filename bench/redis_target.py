"""The Redis a benchmark writes to: ``REDIS_URL`` with its own DB, else an embedded redis-server."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def bench_redis(db: int) -> Iterator[str]:
    """Yield a Redis URL: ``REDIS_URL`` switched to DB ``db`` (the bench flushes it), or a fresh
    embedded redis-server without persistence, stopped on exit."""
    if os.environ.get("REDIS_URL"):
        from tests.dbclaim import with_db

        yield with_db(os.environ["REDIS_URL"], db)
        return
    from service.store.embedded_redis import EmbeddedRedis

    embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-redis-")), persist=False)
    embedded.start()
    try:
        yield embedded.url
    finally:
        embedded.stop()
