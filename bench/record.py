"""One machine-readable line per benchmark, and the latest figures kept in a results file.

A bench calls :func:`record` once, at the end, with the figures it printed::

    record("poll_scale", [figure("304 path", rate, "polls/s", ratio=rate / ceiling, goal=">= 0.5x bare aiohttp")])

It prints ``RESULT {json}`` (the last line of the output, for anything that reads logs) and,
when a results file is named (``--json PATH``, or ``$TRIBUTARY_BENCH_JSON`` as ``make bench``
sets it), replaces that bench's entry in the file, with the machine it ran on and the date.
``bench/table.py`` renders the file as the table of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ENV = "TRIBUTARY_BENCH_JSON"


def median_round(rounds: Sequence[tuple[float, float | None]]) -> tuple[float, float | None]:
    """Of alternating rounds (ours, the other side's rate), the one whose ratio is the median: a
    change in the machine's speed during the run touches both sides of a round alike. Without the
    other side's rates, the median of ours (and None)."""
    if all(theirs for _, theirs in rounds):
        return sorted(rounds, key=lambda pair: pair[0] / (pair[1] or 1))[len(rounds) // 2]
    return sorted(ours for ours, _ in rounds)[len(rounds) // 2], None  # a tie would compare the Nones


def figure(
    label: str, value: float, unit: str, *, ratio: float | None = None, goal: str | None = None
) -> dict[str, Any]:
    """One row of the table: what was measured, its value, and the side-by-side ratio the goal is about."""
    row: dict[str, Any] = {"figure": label, "value": round(value, 3), "unit": unit}
    if ratio is not None:
        row["ratio"] = round(ratio, 3)
    if goal is not None:
        row["goal"] = goal
    return row


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        metavar="PATH",
        default=os.environ.get(ENV) or None,
        help=f"record the figures in this results file (default ${ENV})",
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}


def command_line() -> str:
    """How the bench was run, without where its results went."""
    args, shown = sys.argv[1:], []
    while args:
        arg = args.pop(0)
        if arg == "--json":
            args = args[1:]
        elif not arg.startswith("--json="):
            shown.append(arg)
    return " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *shown])


def record(name: str, figures: list[dict[str, Any]], path: str | Path | None = None) -> dict[str, Any]:
    """Print ``RESULT {json}``; with a results file (``path``, else ``$TRIBUTARY_BENCH_JSON``), keep it there."""
    entry = {
        "bench": name,
        "figures": figures,
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(),
    }
    print("RESULT " + json.dumps(entry, ensure_ascii=False), flush=True)
    target = path or os.environ.get(ENV)
    if target:
        target = Path(target)
        results = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
        results[name] = entry
        target.write_text(
            json.dumps(dict(sorted(results.items())), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return entry
