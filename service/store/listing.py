"""Reading article indexes for the partner API: keyset pages within a time range, membership.

Indexes are zsets id -> published (unix seconds); pages run newest first, ties broken by id
descending exactly as Redis orders equal scores, so the order is total and stable.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

Position = tuple[float, str]  # (score, id) of the last entry handed out


async def index_page(
    redis: Redis,
    index: str,
    after: Position | None,
    count: int,
    *,
    newer_than: float | None = None,
    older_than: float | None = None,
) -> list[tuple[str, float]]:
    """Up to ``count`` (id, score), newest first, strictly after ``after``, with
    ``newer_than < score < older_than``."""
    low = f"({newer_than!r}" if newer_than is not None else "-inf"
    if after is None:
        high = f"({older_than!r}" if older_than is not None else "+inf"
        rows = await redis.zrevrangebyscore(index, high, low, start=0, num=count, withscores=True)
        return [(i.decode(), s) for i, s in rows]
    score, last_id = after
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrevrangebyscore(index, score, score, withscores=True)
        pipe.zrevrangebyscore(index, f"({score!r}", low, start=0, num=count, withscores=True)
        same, lower = await pipe.execute()
    ties = [(i.decode(), s) for i, s in same if i.decode() < last_id]
    return (ties + [(i.decode(), s) for i, s in lower])[:count]


async def members(redis: Redis, indexes: Sequence[str], ids: Sequence[str]) -> list[set[str]]:
    """For each index, which of ``ids`` it holds (one ZMSCORE per index, pipelined)."""
    if not ids or not indexes:
        return [set() for _ in indexes]
    async with redis.pipeline(transaction=False) as pipe:
        for index in indexes:
            pipe.zmscore(index, list(ids))
        answers = await pipe.execute()
    return [{i for i, score in zip(ids, scores, strict=True) if score is not None} for scores in answers]
