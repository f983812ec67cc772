"""The entries of a source's feed known to give its stored articles unchanged, by key, with the
date each ranks by and the article it gives.

A changed feed usually brings one new entry among dozens already stored, and reading them all
again is most of a changed poll's CPU. Each poll that reads a feed records here the keys of the
entries whose articles it found stored with the same content hash; the next poll reads only the
entries whose key is not here. A key covers the entry and everything else reading and
normalising it depends on: from its bytes where the fast reader can key it so
(:mod:`workers.parse.raw_keys`: such entries are not even parsed), else as parsed
(:func:`workers.normalise.read.entry_key`: not normalised). What a poll passes over would have
been found unchanged and left alone, so the stored articles are the same either way. The date
kept with a key stands in for the entry's when the poll ranks entries (only the newest are read)
and times its next poll (the publisher's recent pace); the article's id, hashed, tells a poll
that an entry it reads gives the same article as one it passed over (a feed listing an id twice),
which only a full read settles (:func:`workers.normalise.read.read_feed`).

One string per source, replaced by every read (so it holds at most the feed's entries): a
version byte, then 32 bytes an entry: its key's 16, its date's 8 (microseconds since the epoch,
signed, big-endian; the smallest value for none) and 8 of its article id's SHA-256: 1,601 bytes
for 50. It is forgotten when
an operator removes the source's articles or one of them, so the next poll stores again what is
still in the feed, as before this record existed. A record in an earlier form reads as empty.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from redis.asyncio import Redis

from service import keys

__all__ = ["KEY_BYTES", "SeenEntries", "SeenEntry", "article_digest", "decode", "encode"]

KEY_BYTES = 16
"""An entry key's length (the first 16 bytes of a SHA-256)."""

VERSION = b"\x02"
ARTICLE_BYTES = 8
_ENTRY = struct.Struct(f">{KEY_BYTES}sq{ARTICLE_BYTES}s")  # key, date, article
_NO_DATE = -(2**63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class SeenEntry(NamedTuple):
    date: datetime | None
    """The date the entry ranks by: published, else updated."""
    article: bytes
    """:func:`article_digest` of the id of the article it gives."""


def article_digest(article_id: str) -> bytes:
    return hashlib.sha256(article_id.encode()).digest()[:ARTICLE_BYTES]


class SeenEntries:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, source_id: str) -> dict[bytes, SeenEntry]:
        return decode(await self.redis.get(keys.seen_entries(source_id)) or b"")

    async def replace(self, source_id: str, entries: Mapping[bytes, SeenEntry]) -> None:
        if entries:
            await self.redis.set(keys.seen_entries(source_id), encode(entries))
        else:
            await self.redis.delete(keys.seen_entries(source_id))

    def forget(self, pipe: Redis, source_id: str) -> None:
        """Queue the record's removal into ``pipe`` (a removal's own transaction)."""
        pipe.delete(keys.seen_entries(source_id))


def encode(entries: Mapping[bytes, SeenEntry]) -> bytes:
    return VERSION + b"".join(
        _ENTRY.pack(key, _NO_DATE if date is None else (date - _EPOCH) // _MICROSECOND, article)
        for key, (date, article) in entries.items()
    )


def decode(record: bytes) -> dict[bytes, SeenEntry]:
    if record[:1] != VERSION or (len(record) - 1) % _ENTRY.size:
        return {}  # none, or an earlier form (keys only, 16 bytes each): read in full once
    try:
        return {
            key: SeenEntry(None if micros == _NO_DATE else _EPOCH + timedelta(microseconds=micros), article)
            for key, micros, article in _ENTRY.iter_unpack(memoryview(record)[1:])
        }
    except OverflowError:  # not a date this module wrote: read in full once
        return {}
