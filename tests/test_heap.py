"""``service.heap.settle``: what a started process keeps leaves the collector's sight. Run in a
child process, as the setting is global and would outlive the test here."""

from __future__ import annotations

import subprocess
import sys

from service.heap import YOUNG_COLLECTION_EVERY


def test_settle_freezes_and_spaces_out_young_collections() -> None:
    code = (
        "import gc; from service import heap; before = gc.get_threshold(); heap.settle(); "
        "after = gc.get_threshold(); "
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count(); "
        f"assert after == ({YOUNG_COLLECTION_EVERY}, before[1], before[2]), after; "
        "x = []; x.append(x); del x; assert gc.collect() >= 1  # cycles made later are still found"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
