"""The change log: every committed change of an article, in commit order (docs/partners.md).

Layout (names in :mod:`service.keys`):

- ``changelog``: a Redis stream, one entry per change. The store queues the append (a Lua
  script) *inside* the MULTI of the write it records, so both commit together or not at all:
  the stream id, assigned at EXEC, is the commit order; a write that lost its WATCH race and
  retried has no entry for the lost attempt. Nothing is missed, nothing repeated.
- ``changelog:feeds``: hash id -> the feeds the article was in at its latest entry. The script
  reads it as the entry's ``before`` and replaces it with ``after``, judged at EXEC time from the
  feed indexes among the feeds whose filters the written document passes, so membership is
  exact even while other writes move the indexes. A view of some feeds turns (kind, before,
  after) into created / updated / removed (:func:`as_seen_by`).
- ``changelog:horizon``: the id of the newest entry retention removed; a position before it
  has missed entries.

Entries carry ids and facts, not documents: a reader fetches the current document, which
keeps the log small (7 days of changes, not 7 days of article bodies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from redis.asyncio import Redis

from service import keys
from service.config import Settings
from service.errors import StoreError
from service.feed_filter import feeds_passing
from service.models import Article


class ChangeKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    REMOVED = "removed"


class RemovalReason(StrEnum):
    RETENTION = "retention"  # the oldest articles of a source past [storage] retention_per_source
    REMOVED = "removed"  # an operator removed it
    MERGED = "merged"  # found to be a duplicate of another stored article, merged into it
    LEFT_FEED = "left_feed"  # only in a view of some feeds: still stored, no longer in those feeds


class ChangedPart(StrEnum):
    """What an ``updated`` entry changed: a re-poll with the same content hash changes nothing."""

    CONTENT = "content"  # the content hash moved
    SOURCES = "sources"  # another source's copy was merged in: provenance grew
    FEEDS = "feeds"  # the feeds showing it changed (another source's retention let it go)


class Position(NamedTuple):
    """A place in the log: the stream id (milliseconds, sequence). ``(0, 0)`` is before everything."""

    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Position:
        match = _STREAM_ID.fullmatch(text)
        if match is None:
            raise ValueError(f"not a change-log position: {text!r}")
        return cls(int(match[1]), int(match[2]))


START = Position(0, 0)
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


@dataclass(frozen=True)
class LogEntry:
    position: Position
    article_id: str
    kind: ChangeKind
    at: datetime
    content_hash: str | None
    reason: RemovalReason | None
    merged_into: str | None
    changed: ChangedPart | None
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class SeenChange:
    """An entry as one view (all articles, or some feeds) sees it."""

    entry: LogEntry
    kind: ChangeKind
    reason: RemovalReason | None


# One entry: ``before`` from the feeds hash, ``after`` the candidate feeds whose index holds
# the id now; an ``updated``/``feeds`` entry that moves no membership is dropped (false).
_APPEND_FUNCTION = """
local function append(id, kind, at, hash, reason, into, changed, feed_keys, names)
  local before = redis.call('HGET', KEYS[2], id) or ''
  local after = {}
  if kind ~= 'removed' then
    for j = 1, #names do
      if redis.call('ZSCORE', feed_keys[j], id) then after[#after + 1] = names[j] end
    end
  end
  after = table.concat(after, ',')
  if changed == 'feeds' and after == before then return false end
  if kind == 'removed' then redis.call('HDEL', KEYS[2], id) else redis.call('HSET', KEYS[2], id, after) end
  return redis.call('XADD', KEYS[1], '*', 'id', id, 'kind', kind, 'at', at, 'hash', hash,
    'reason', reason, 'into', into, 'changed', changed, 'before', before, 'after', after)
end
"""

# KEYS: stream, feeds hash, then the feed index of every candidate feed.
# ARGV: id, kind, at, hash, reason, merged_into, changed, then the candidate feed names.
_APPEND = (
    _APPEND_FUNCTION
    + """
local feed_keys, names = {}, {}
for i = 8, #ARGV do
  feed_keys[#feed_keys + 1] = KEYS[i - 5]
  names[#names + 1] = ARGV[i]
end
return append(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], feed_keys, names)
"""
)

# KEYS: stream, feeds hash, then the index of each feed named in ARGV[2 .. ARGV[1] + 1].
# Then per entry: id, kind, at, hash, reason, merged_into, changed, n, and n positions of its
# candidate feeds in that list. Entries are appended in order, each exactly as by _APPEND.
_APPEND_MANY = (
    _APPEND_FUNCTION
    + """
local feeds = tonumber(ARGV[1])
local i = feeds + 2
while i <= #ARGV do
  local n = tonumber(ARGV[i + 7])
  local feed_keys, names = {}, {}
  for j = 1, n do
    local position = tonumber(ARGV[i + 7 + j])
    feed_keys[j] = KEYS[2 + position]
    names[j] = ARGV[1 + position]
  end
  append(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], feed_keys, names)
  i = i + 8 + n
end
return true
"""
)

# KEYS: stream, horizon. ARGV: the first position to keep.
_TRIM = """
local last = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '-', 'COUNT', 1)
if #last == 0 then return 0 end
redis.call('SET', KEYS[2], last[1][1])
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
"""


def record_into(
    pipe: Redis,
    settings: Settings,
    article_id: str,
    kind: ChangeKind,
    at: datetime,
    *,
    article: Article | None = None,
    reason: RemovalReason | None = None,
    merged_into: str | None = None,
    changed: ChangedPart | None = None,
) -> None:
    """Queue the entry on ``pipe`` (inside the MULTI of the write it records).

    ``article`` is the document as written (None for a removal): only feeds whose filters it
    passes can count it as a member. An ``updated``/``feeds`` entry that changes no membership
    is dropped by the script.
    """
    candidates = feeds_passing(settings, article) if article is not None and kind is not ChangeKind.REMOVED else []
    pipe.eval(
        _APPEND,
        2 + len(candidates),
        keys.CHANGELOG,
        keys.CHANGELOG_FEEDS,
        *(keys.feed_index(feed) for feed in candidates),
        article_id,
        kind.value,
        at.isoformat(),
        article.content_hash if article is not None else "",
        reason.value if reason else "",
        merged_into or "",
        changed.value if changed else "",
        *candidates,
    )


def record_written_into(
    pipe: Redis, settings: Settings, written: Sequence[tuple[Article, ChangedPart | None]], at: datetime
) -> None:
    """Queue the entries of articles written together (a batch), in order, with one script call.

    Each ``(article, changed)`` is an entry as :func:`record_into` makes it for the document as
    written: ``created`` when ``changed`` is None, else ``updated``.
    """
    if not written:
        return
    feeds: dict[str, int] = {}  # candidate feed -> its position in the script's list (1-based)
    entries: list[str | int] = []
    for article, changed in written:
        candidates = [feeds.setdefault(feed, len(feeds) + 1) for feed in feeds_passing(settings, article)]
        kind = ChangeKind.CREATED if changed is None else ChangeKind.UPDATED
        entries += [article.id, kind.value, at.isoformat(), article.content_hash, "", ""]
        entries += [changed.value if changed else "", len(candidates), *candidates]
    pipe.eval(
        _APPEND_MANY,
        2 + len(feeds),
        keys.CHANGELOG,
        keys.CHANGELOG_FEEDS,
        *(keys.feed_index(feed) for feed in feeds),
        len(feeds),
        *feeds,
        *entries,
    )


def as_seen_by(entry: LogEntry, feeds: frozenset[str] | None) -> SeenChange | None:
    """The entry for a view of ``feeds`` (None: every article), or None when it does not concern it.

    Entering one of the feeds is ``created``, leaving them all ``removed`` (reason ``left_feed``
    unless the article itself was removed).
    """
    if feeds is None:
        return SeenChange(entry, entry.kind, entry.reason)
    was_in = not feeds.isdisjoint(entry.before)
    is_in = entry.kind is not ChangeKind.REMOVED and not feeds.isdisjoint(entry.after)
    if is_in:
        return SeenChange(entry, ChangeKind.UPDATED if was_in else ChangeKind.CREATED, None)
    if was_in:
        return SeenChange(entry, ChangeKind.REMOVED, entry.reason or RemovalReason.LEFT_FEED)
    return None


def _text(fields: dict[bytes, bytes], name: bytes) -> str:
    return fields.get(name, b"").decode()


def _entry(stream_id: bytes, fields: dict[bytes, bytes]) -> LogEntry:
    try:
        return LogEntry(
            position=Position.parse(stream_id.decode()),
            article_id=_text(fields, b"id"),
            kind=ChangeKind(_text(fields, b"kind")),
            at=datetime.fromisoformat(_text(fields, b"at")),
            content_hash=_text(fields, b"hash") or None,
            reason=RemovalReason(_text(fields, b"reason")) if _text(fields, b"reason") else None,
            merged_into=_text(fields, b"into") or None,
            changed=ChangedPart(_text(fields, b"changed")) if _text(fields, b"changed") else None,
            before=tuple(f for f in _text(fields, b"before").split(",") if f),
            after=tuple(f for f in _text(fields, b"after").split(",") if f),
        )
    except ValueError as exc:
        raise StoreError(f"unreadable change-log entry {stream_id!r}: {exc}") from exc


class ChangeLog:
    """Reading and trimming the log; appends go through :func:`record_into` in store writes."""

    def __init__(self, redis: Redis):
        self.redis = redis

    async def head(self) -> Position:
        """The newest entry's position (``START`` when the log is empty): what a snapshot reflects."""
        last = await self.redis.xrevrange(keys.CHANGELOG, count=1)
        return Position.parse(last[0][0].decode()) if last else START

    async def horizon(self) -> Position:
        """Positions before this one may have missed entries that retention removed."""
        raw = await self.redis.get(keys.CHANGELOG_HORIZON)
        return Position.parse(raw.decode()) if raw else START

    async def read(self, after: Position, count: int) -> list[LogEntry]:
        """Up to ``count`` entries strictly after ``after``, oldest first."""
        rows = await self.redis.xrange(keys.CHANGELOG, min=f"({after}", max="+", count=count)
        return [_entry(stream_id, fields) for stream_id, fields in rows]

    async def trim(self, retention_seconds: float) -> int:
        """Drop entries older than the retention, judged by the Redis server's clock (the one that
        stamped the stream ids); returns how many went."""
        seconds, micros = await self.redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return await self.trim_before(Position(max(0, now_ms - int(retention_seconds * 1000)), 0))

    async def trim_before(self, keep_from: Position) -> int:
        """Drop the entries before ``keep_from``; the newest dropped becomes the horizon."""
        return int(await self.redis.eval(_TRIM, 2, keys.CHANGELOG, keys.CHANGELOG_HORIZON, str(keep_from)))
