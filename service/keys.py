"""Every Redis key Tributary writes, in one place. All live under one prefix."""

from __future__ import annotations

PREFIX = "trib:"

INGEST_STREAM = PREFIX + "ingest"
INGEST_GROUP = "ingest"
INGEST_DEAD = PREFIX + "ingest:dead"  # stream of entries that failed every delivery
SCHEDULE = PREFIX + "schedule"  # zset: source id -> next due (unix seconds)
CHANGES = PREFIX + "changes"  # zset: article id -> last change (unix seconds)
ARQ_QUEUE = PREFIX + "arq:queue"
DISABLED = PREFIX + "disabled"  # set: source ids not scheduled until re-enabled


def article(article_id: str) -> str:
    return f"{PREFIX}article:{article_id}"


def source_index(source_id: str) -> str:
    """zset: article id -> published (unix seconds)."""
    return f"{PREFIX}source:{source_id}:index"


def source_state(source_id: str) -> str:
    return f"{PREFIX}source:{source_id}:state"


def poll_lease(source_id: str) -> str:
    return f"{PREFIX}source:{source_id}:lease"


def feed_index(feed_name: str) -> str:
    """zset: article id -> published (unix seconds)."""
    return f"{PREFIX}feed:{feed_name}:index"


def feed_version(feed_name: str) -> str:
    """Counter bumped whenever the feed's items change; keys the rendered-bytes cache."""
    return f"{PREFIX}feed:{feed_name}:version"


def feed_members(feed_name: str) -> str:
    """The source ids the feed index was built from, to rebuild it when the config changes."""
    return f"{PREFIX}feed:{feed_name}:members"


def host_budget(host: str) -> tuple[str, str, str]:
    """One host's politeness budget: active request slots (zset), rate bucket (hash), pause."""
    base = f"{PREFIX}host:{host}"
    return f"{base}:active", f"{base}:rate", f"{base}:pause"
