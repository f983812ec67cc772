"""A cache bounded in bytes, not entries: some entries pinned, the rest evicted least recently used.

The render cache's entries range from a few kilobytes (a 10-item page) to tens of megabytes (a
1,000-item feed with its gzip and brotli copies), so a bound on their number bounds nothing:
80 requests with distinct ``?limit=`` once took a web process from 196 MB to 1.56 GB. Here
every entry is charged its size, including what it grows by later (a compressed variant made
on first request), and unpinned entries go, least recently used first, while the total is over
the budget. Pinned entries (the plain feeds' current renderings) are never evicted but are
counted, so they leave less room for the rest.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

__all__ = ["ByteLRU"]


class ByteLRU(Generic[K, V]):
    def __init__(
        self,
        budget_bytes: int,
        *,
        max_entries: int | None = None,
        on_evict: Callable[[K], object] | None = None,
    ):
        self.budget_bytes = budget_bytes
        self.max_entries = max_entries  # a second bound on the unpinned, for per-entry bookkeeping
        self.on_evict = on_evict
        self.bytes = 0
        self._pinned: dict[K, tuple[V, int]] = {}
        self._lru: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pinned) + len(self._lru)

    def get(self, key: K) -> V | None:
        found = self._pinned.get(key)
        if found is None:
            found = self._lru.get(key)
            if found is not None:
                self._lru.move_to_end(key)
        return found[0] if found is not None else None

    def put(self, key: K, value: V, size: int, *, pinned: bool = False) -> None:
        self._drop(key)
        (self._pinned if pinned else self._lru)[key] = (value, size)
        self.bytes += size
        self._evict()

    def grew(self, key: K, value: V, added: int) -> None:
        """``value`` (cached under ``key``) grew by ``added`` bytes, and was just used; nothing if it
        left the cache meanwhile (a request still holding an evicted snapshot)."""
        for table in (self._pinned, self._lru):
            found = table.get(key)
            if found is not None and found[0] is value:
                table[key] = (value, found[1] + added)
                if table is self._lru:
                    self._lru.move_to_end(key)
                self.bytes += added
                self._evict()
                return

    def _drop(self, key: K) -> None:
        found = self._pinned.pop(key, None) or self._lru.pop(key, None)
        if found is not None:
            self.bytes -= found[1]

    def _evict(self) -> None:
        while self._lru and (
            self.bytes > self.budget_bytes or (self.max_entries is not None and len(self._lru) > self.max_entries)
        ):
            key, (_, size) = self._lru.popitem(last=False)
            self.bytes -= size
            if self.on_evict is not None:
                self.on_evict(key)
