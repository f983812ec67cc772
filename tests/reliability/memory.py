"""Peak memory of a piece of work, for bounds asserted generously (never timings).

Linux lets a process reset its own peak RSS (``/proc/self/clear_refs``, "5"), so the peak of
just the work is ``VmHWM`` afterwards minus ``VmRSS`` before. Where that is not possible the
Python-level peak of ``tracemalloc`` stands in (slower, and blind to memory outside Python).
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Peak:
    grew: int = 0  # bytes above the start at the peak
    how: str = ""


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"no {field} in {_STATUS}")
    return int(match[1])


def _can_reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


@contextmanager
def peak_growth() -> Iterator[Peak]:
    peak = Peak()
    if _can_reset_peak():
        start = _status_kib("VmRSS")
        _CLEAR_REFS.write_text("5")
        yield peak
        peak.grew, peak.how = max(0, _status_kib("VmHWM") - start) * 1024, "peak RSS"
        return
    tracemalloc.start()
    try:
        yield peak
        peak.grew, peak.how = tracemalloc.get_traced_memory()[1], "tracemalloc peak"
    finally:
        tracemalloc.stop()
