"""How long to wait before trying again: exponential, capped, with jitter so that many
processes that lost Redis together do not all knock on it in the same instant."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.5,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait before try ``attempt + 1`` (``attempt`` >= 1 failures so far).

    ``base * 2**(attempt-1)``, at most ``cap``; then up to ``jitter`` of it is taken off at
    random (0 keeps it exact, 1 is "full jitter").
    """
    if attempt < 1:
        return 0.0
    exact = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return exact * (1 - jitter * rand())
