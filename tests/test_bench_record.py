"""bench/record.py keeps the latest figures of each bench in one results file; bench/table.py
renders them as the table of bench/README.md, between its markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.record import figure, median_round, record
from bench.table import END, START, render, write_into


def test_record_prints_a_result_line_and_replaces_the_bench_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results.json"
    monkeypatch.setattr("sys.argv", ["bench/poll_scale.py", "--sources", "100", "--json", str(results)])
    record("poll_scale", [figure("304 path", 1000.4, "polls/s", ratio=0.5, goal=">= 0.5x")], results)
    record("serve", [figure("200", 20_000, "req/s")], results)
    record("poll_scale", [figure("304 path", 2000, "polls/s", ratio=0.6, goal=">= 0.5x")], results)

    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("RESULT ") and json.loads(last[len("RESULT ") :])["bench"] == "poll_scale"
    kept = json.loads(results.read_text(encoding="utf-8"))
    assert sorted(kept) == ["poll_scale", "serve"]
    entry = kept["poll_scale"]
    assert entry["figures"] == [
        {"figure": "304 path", "value": 2000, "unit": "polls/s", "ratio": 0.6, "goal": ">= 0.5x"}
    ]
    assert entry["command"] == "python bench/poll_scale.py --sources 100"  # where results went is not part of it
    assert {"cpu", "cores", "python"} <= set(entry["machine"]) and entry["date"].endswith("UTC")


def test_record_without_a_results_file_only_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIBUTARY_BENCH_JSON", raising=False)
    monkeypatch.chdir(tmp_path)
    record("render", [figure("atom", 12.5, "µs/item")])
    assert list(tmp_path.iterdir()) == []


def test_the_table_goes_between_the_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results.json"
    monkeypatch.setattr("sys.argv", ["bench/memory.py"])
    record("memory", [figure("Redis bytes/article", 4100.78, "B", ratio=0.989, goal="linear")], results)
    table = render(json.loads(results.read_text(encoding="utf-8")))
    assert "| `memory` | Redis bytes/article | 4,101 B | 0.99× | linear |" in table
    assert "Run as: `python bench/memory.py`" in table

    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\n{START}\nold table\n{END}\nafter\n", encoding="utf-8")
    write_into(readme, table)
    write_into(readme, table)  # idempotent
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and text.count(table) == 1 and text.endswith(f"{END}\nafter\n")


def test_the_median_round_is_the_one_of_the_median_ratio_not_of_the_median_rate() -> None:
    # The machine's speed moved between rounds: the median of our rates (300) is not the median round's.
    rounds: list[tuple[float, float | None]] = [(400, 500), (300, 1000), (200, 400)]
    assert median_round(rounds) == (200, 400)  # ratios 0.8, 0.3, 0.5
    assert median_round([(300, None), (200, None), (300, None)]) == (300, None)  # ties of ours alone
