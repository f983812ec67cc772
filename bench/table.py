"""The latest benchmark figures as a markdown table: read from a results file (``bench/record.py``
writes it), printed, and written into ``bench/README.md`` between its markers.

    python bench/table.py [--results bench/results.json] [--readme bench/README.md] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
START = "<!-- bench-table:start -->"
END = "<!-- bench-table:end -->"


def number(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render(results: dict[str, Any]) -> str:
    """One row per figure; the machine column names the CPU once per distinct machine."""
    rows = [
        "| bench | figure | value | ratio | goal | machine | date |",
        "| --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for name, entry in sorted(results.items()):
        m = entry["machine"]
        machine = f"{m['cpu']}, {m['cores']} cores, Python {m['python']}"
        for f in entry["figures"]:
            ratio = f"{f['ratio']:.2f}×" if "ratio" in f else ""
            rows.append(
                f"| `{name}` | {f['figure']} | {number(f['value'])} {f['unit']} | {ratio} | {f.get('goal', '')} "
                f"| {machine} | {entry['date']} |"
            )
    commands = sorted({entry["command"] for entry in results.values()})
    return "\n".join(rows) + "\n\nRun as: " + "; ".join(f"`{c}`" for c in commands) + "\n"


def write_into(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    head, found, rest = text.partition(START)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    readme.write_text(f"{head}{START}\n{table}{END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if not args.results.exists():
        print(f"no results in {args.results}: run the benches with --json {args.results}", file=sys.stderr)
        return 1
    table = render(json.loads(args.results.read_text(encoding="utf-8")))
    if not args.no_write:
        write_into(args.readme, table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
