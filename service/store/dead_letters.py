"""Dead letters: work that failed for good, kept with its payload, error and time until an
operator retries or purges it (``tributary dead``, the admin page). Nothing is dropped silently.

Three streams, one view:

- ``ingest:dead``: ingest entries (one poll's articles) that could not be decoded or failed every
  delivery (written by the ingest, ``workers/ingest/drain.py``); retrying puts the entry back on
  the ingest stream.
- ``dead:jobs``: arq jobs that raised, or exhausted their tries, or gave up themselves (a WebSub
  delivery after its last attempt); retrying queues the same function with the same arguments.
- ``dead:articles``: feed entries a poll read but could not make an article of (normalising or
  validation failed: no identity, an invalid field), with the entry's essential fields (written
  by the poll, ``workers/poll/pipeline.py``). They cannot be retried: the entry is the
  publisher's, and it is read again whenever the feed changes, stored once it validates. The
  same entry is kept once, not at every poll: it is remembered for
  :data:`ARTICLE_SEEN_SECONDS` (a purge does not forget that; a changed entry is a new one).

A dead letter's id is its stream's name and entry id: ``ingest-1700000000000-0``, ``job-…``,
``article-…``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from service import jobs, keys
from service.models import RejectedEntry

Kind = Literal["job", "ingest", "article"]
_KINDS: tuple[Kind, ...] = ("job", "ingest", "article")
_STREAMS: dict[str, str] = {"job": keys.DEAD_JOBS, "ingest": keys.INGEST_DEAD, "article": keys.DEAD_ARTICLES}
MAX_ERROR_CHARS = 2000
ARTICLE_SEEN_SECONDS = 30 * 86400
ARTICLE_NOT_RETRYABLE = (
    "an entry of the publisher's feed cannot be retried: it is read again whenever the feed changes"
    " and stored once it validates; purge the letter once read"
)


class NotRetryable(Exception):
    """The letter is kept for the operator to read, but there is no work to queue again."""


class DeadLetter(BaseModel):
    id: str
    kind: Kind
    at: datetime
    error: str
    function: str | None = None
    """The job's function (``job``); ``ingest`` for an ingest entry; None for an article."""
    args: list[Any] = []
    tries: int = 1
    source_id: str | None = None
    payload: str = ""
    """What would be retried, as JSON: the job's arguments, or the entry's articles; for an
    article, the feed entry's essential fields (guid, link, title, dates, summary)."""

    @property
    def summary(self) -> str:
        if self.kind == "ingest":
            return f"ingest of {self.source_id or '?'}: {len(self.payload)} bytes of articles"
        if self.kind == "article":
            entry = json.loads(self.payload or "{}")
            named = entry.get("guid") or entry.get("link") or entry.get("title") or "no guid, link or title"
            return f"article of {self.source_id or '?'}: entry {entry.get('index', '?')} ({named})"
        return f"{self.function}({', '.join(json.dumps(a) for a in self.args)})"


def _text(fields: dict[bytes, bytes], name: str) -> str:
    value = fields.get(name.encode())
    return value.decode("utf-8", "replace") if value is not None else ""


def _entry_time(entry_id: str) -> datetime:
    return datetime.fromtimestamp(int(entry_id.split("-")[0]) / 1000, UTC)


def _letter(kind: Kind, entry_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
    if kind == "article":
        return DeadLetter(
            id=f"article-{entry_id}",
            kind="article",
            at=datetime.fromisoformat(_text(fields, "at")) if _text(fields, "at") else _entry_time(entry_id),
            error=_text(fields, "error"),
            source_id=_text(fields, "source_id") or None,
            payload=_text(fields, "entry"),
        )
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

    async def add_articles(self, source_id: str, rejected: Sequence[RejectedEntry], now: datetime) -> list[str]:
        """Keep a poll's rejected entries, each once: an entry already kept (the same fields and
        error) within :data:`ARTICLE_SEEN_SECONDS` is not added again. Returns the new letters' ids."""
        if not rejected:
            return []
        digests = [_article_digest(source_id, r) for r in rejected]
        async with self.redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.set(keys.dead_article_seen(digest), "1", nx=True, ex=ARTICLE_SEEN_SECONDS)
            first = await pipe.execute()
        new = [(r, d) for r, d, fresh in zip(rejected, digests, first, strict=True) if fresh]
        if not new:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for r, digest in new:
                pipe.xadd(
                    keys.DEAD_ARTICLES,
                    {
                        "source_id": source_id,
                        "entry": json.dumps({"index": r.index, **r.entry}),
                        "error": r.error[:MAX_ERROR_CHARS],
                        "digest": digest,
                        "at": now.isoformat(),
                    },
                )
            ids = await pipe.execute()
        return [f"article-{entry_id.decode()}" for entry_id in ids]

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
        """Queue the work again and forget the letter; None when there is no such letter.

        Raises :class:`NotRetryable` for an article (see the module's docstring)."""
        letter = await self.get(letter_id)
        where = _split(letter_id)
        if letter is None or where is None:
            return None
        kind, entry_id = where
        if kind == "article":
            raise NotRetryable(ARTICLE_NOT_RETRYABLE)
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


def _article_digest(source_id: str, rejected: RejectedEntry) -> str:
    """The same entry failing the same way at every poll has the same digest (its index may move)."""
    text = json.dumps([source_id, rejected.entry, rejected.error], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
