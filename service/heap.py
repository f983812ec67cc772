"""The cyclic garbage collector told what a long-running process keeps.

CPython's collections walk the objects they track, and its full ones walk all of them: in a
worker, a ``SourceConfig`` per configured source (100,000 of them at scale), the imported modules
and their pydantic schemas, none of which ever becomes garbage. :func:`settle`, called once a
process has loaded what it keeps, moves those out of the collector's sight (``gc.freeze()``) and
lets more allocations pass between young collections: the 304 poll path spent about a fifth of
its CPU in the collector before (bench/poll_scale.py, docs/publishers.md).

Reference counting frees everything else as before; the collector still finds the cycles made
after start-up.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_EVERY = 10_000
"""Allocations (net of frees) between collections of the youngest generation; CPython's is 700."""


def settle() -> None:
    """Freeze what is alive now and space out the young collections. Once per process, after
    start-up, in the processes that serve or poll (not in tests: what they freeze stays)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
