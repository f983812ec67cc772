"""The entries of a source's feed known to give its stored articles unchanged, by key.

A changed feed usually brings one new entry among dozens already stored, and normalising
(sanitising every item's HTML above all) is most of a changed poll's CPU. Each poll that reads a
feed records here the keys (:func:`workers.normalise.read.entry_key`: the entry as parsed plus
everything else normalising reads) of the entries whose articles it found stored with the same
content hash; the next poll normalises only the entries whose key is not here. What it skips
would have been found unchanged and left alone, so the stored articles are the same either way.

One string per source, the keys' 16 bytes each, replaced by every read (so it holds at most
the feed's entries: 800 bytes for 50, where a Redis set of them took 4,400), and forgotten when
an operator removes the source's articles or one of them, so the next poll stores again what is
still in the feed, as before this record existed.
"""

from __future__ import annotations

from collections.abc import Collection

from redis.asyncio import Redis

from service import keys

__all__ = ["KEY_BYTES", "SeenEntries"]

KEY_BYTES = 16
"""An entry key's length (the first 16 bytes of a SHA-256)."""


class SeenEntries:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, source_id: str) -> frozenset[bytes]:
        joined = await self.redis.get(keys.seen_entries(source_id)) or b""
        return frozenset(joined[start : start + KEY_BYTES] for start in range(0, len(joined), KEY_BYTES))

    async def replace(self, source_id: str, entry_keys: Collection[bytes]) -> None:
        if entry_keys:
            await self.redis.set(keys.seen_entries(source_id), b"".join(entry_keys))
        else:
            await self.redis.delete(keys.seen_entries(source_id))

    def forget(self, pipe: Redis, source_id: str) -> None:
        """Queue the record's removal into ``pipe`` (a removal's own transaction)."""
        pipe.delete(keys.seen_entries(source_id))
