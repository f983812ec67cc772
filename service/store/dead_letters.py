"""Dead letters: work that failed for good, kept with its payload, error and time until an
operator retries or purges it (``tributary dead``, the admin page). Nothing is dropped silently.

Two streams, one view:

- ``ingest:dead``: ingest entries (one poll's articles) that could not be decoded or failed every
  delivery (written by the ingest, ``workers/ingest/drain.py``); retrying puts the entry back on
  the ingest stream.
- ``dead:jobs``: arq jobs that raised, or exhausted their tries, or gave up themselves (a WebSub
  delivery after its last attempt); retrying queues the same function with the same arguments.

A dead letter's id is its stream's name and entry id: ``ingest-1700000000000-0``, ``job-…``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service import jobs, keys

Kind = Literal["job", "ingest"]
_KINDS: tuple[Kind, ...] = ("job", "ingest")
_STREAMS: dict[str, str] = {"job": keys.DEAD_JOBS, "ingest": keys.INGEST_DEAD}
MAX_ERROR_CHARS = 2000


class DeadLetter(BaseModel):
    id: str
    kind: Kind
    at: datetime
    error: str
    function: str | None = None
    """The job's function (``job``); ``ingest`` for an ingest entry."""
    args: list[Any] = []
    tries: int = 1
    source_id: str | None = None
    payload: str = ""
    """What would be retried, as JSON: the job's arguments, or the entry's articles."""

    @property
    def summary(self) -> str:
        if self.kind == "ingest":
            return f"ingest of {self.source_id or '?'}: {len(self.payload)} bytes of articles"
        return f"{self.function}({', '.join(json.dumps(a) for a in self.args)})"


def _text(fields: dict[bytes, bytes], name: str) -> str:
    value = fields.get(name.encode())
    return value.decode("utf-8", "replace") if value is not None else ""


def _entry_time(entry_id: str) -> datetime:
    return datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC)


def _letter(kind: Kind, entry_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
    if kind == "ingest":
        return DeadLetter(
            id=f"ingest-{entry_id}",
            kind="ingest",
            at=_entry_time(entry_id),
            error=_text(fields, "error"),
            function="ingest",
            source_id=_text(fields, "source_id") or None,
            payload=_text(fields, "articles"),
        )
    args = json.loads(_text(fields, "args") or "[]")
    return DeadLetter(
        id=f"job-{entry_id}",
        kind="job",
        at=datetime.fromisoformat(_text(fields, "at")) if _text(fields, "at") else _entry_time(entry_id),
        error=_text(fields, "error"),
        function=_text(fields, "function"),
        args=args if isinstance(args, list) else [args],
        tries=int(_text(fields, "tries") or 1),
        source_id=args[0] if _text(fields, "function") == "poll" and args else None,
        payload=_text(fields, "args"),
    )


def _split(letter_id: str) -> tuple[Kind, str] | None:
    kind, _, entry_id = letter_id.partition("-")
    if kind not in _STREAMS or not entry_id:
        return None
    return kind, entry_id  # type: ignore[return-value]


class DeadLetters:
    def __init__(self, redis: Redis):
        self.redis = redis

    async def add_job(self, function: str, args: list[Any], error: str, tries: int, now: datetime) -> str:
        entry = await self.redis.xadd(
            keys.DEAD_JOBS,
            {
                "function": function,
                "args": json.dumps(args, default=str),
                "error": error[:MAX_ERROR_CHARS],
                "tries": str(tries),
                "at": now.isoformat(),
            },
        )
        return f"job-{entry.decode()}"

    async def counts(self) -> dict[Kind, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in _STREAMS.values():
                pipe.xlen(stream)
            lengths = await pipe.execute()
        return {kind: int(n) for kind, n in zip(_KINDS, lengths, strict=True)}

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """The newest ``limit`` of each kind, newest first."""
        letters: list[DeadLetter] = []
        for kind, stream in _STREAMS.items():
            for entry_id, fields in await self.redis.xrevrange(stream, count=limit):
                letters.append(_letter(kind, entry_id.decode(), fields))  # type: ignore[arg-type]
        return sorted(letters, key=lambda letter: letter.at, reverse=True)[:limit]

    async def get(self, letter_id: str) -> DeadLetter | None:
        where = _split(letter_id)
        if where is None:
            return None
        kind, entry_id = where
        try:
            found = await self.redis.xrange(_STREAMS[kind], entry_id, entry_id)
        except ResponseError:  # a malformed entry id
            return None
        return _letter(kind, entry_id, found[0][1]) if found else None

    async def retry(self, letter_id: str) -> DeadLetter | None:
        """Queue the work again and forget the letter; None when there is no such letter."""
        letter = await self.get(letter_id)
        where = _split(letter_id)
        if letter is None or where is None:
            return None
        kind, entry_id = where
        if kind == "ingest":
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(keys.INGEST_STREAM, {"source_id": letter.source_id or "", "articles": letter.payload})
                pipe.xdel(keys.INGEST_DEAD, entry_id)
                await pipe.execute()
            return letter
        args = letter.args
        if letter.function in ("poll", "poll_batch"):
            args = args[:1]  # the dispatcher's claim is long gone: poll as `tributary poll` does
        await jobs.enqueue(self.redis, str(letter.function), *args, job_id=f"retry:{letter.id}")
        await self.redis.xdel(keys.DEAD_JOBS, entry_id)
        return letter

    async def purge(self, letter_id: str | None = None) -> int:
        """Forget one letter, or every one (``None``); returns how many."""
        if letter_id is None:
            counts = await self.counts()
            await self.redis.delete(*_STREAMS.values())
            return sum(counts.values())
        where = _split(letter_id)
        if where is None:
            return 0
        kind, entry_id = where
        try:
            return int(await self.redis.xdel(_STREAMS[kind], entry_id))
        except ResponseError:
            return 0
