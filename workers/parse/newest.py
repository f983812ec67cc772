"""Which entries of a long feed to read: the newest ``cap``, decided before reading them. Pure.

A feed of 50,000 items would otherwise be adapted, normalised, queued and written whole, only
for retention to delete all but the newest few hundred. The adapters call :func:`newest` with
each raw entry's date (cheap to read) and build entries only for the indexes it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

T = TypeVar("T")

__all__ = ["newest"]


def newest(entries: Sequence[T], date_of: Callable[[T], datetime | None], cap: int | None) -> list[int]:
    """Indexes of the ``cap`` newest ``entries``, in document order (all of them under the cap;
    ``date_of`` is only called over it).

    Newest by date; entries without one rank after every dated entry, and ties (undated
    entries among them) go by document order, since feeds list their newest first.
    """
    if cap is None or len(entries) <= cap:
        return list(range(len(entries)))
    dates = [date_of(entry) for entry in entries]
    ranked = sorted(range(len(dates)), key=lambda i: (dates[i] is None, -_seconds(dates[i]), i))
    return sorted(ranked[:cap])


def _seconds(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0
