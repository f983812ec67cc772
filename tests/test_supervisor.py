"""The supervisor of ``tributary run``: the restart policy as a table, then real child processes
(small Python scripts) that exit, keep dying at start, or must be stopped in order."""

from __future__ import annotations

import io
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tributary.supervisor import (
    ChildSpec,
    RestartPolicy,
    Supervisor,
    Verdict,
    after_exit,
    describe_exit,
    last_words,
)

POLICY = RestartPolicy(early_seconds=10, max_early_exits=5, base_delay=0.5, max_delay=30)


@pytest.mark.parametrize(
    ("early_exits", "ran", "expected"),
    [
        (0, 3600.0, Verdict(True, 0.5, 0)),  # ran a long time: restart soon, nothing counted
        (0, 1.0, Verdict(True, 0.5, 1)),  # died at start once
        (1, 1.0, Verdict(True, 1.0, 2)),  # again: the wait doubles
        (3, 9.9, Verdict(True, 4.0, 4)),
        (4, 2.0, Verdict(False, 0.0, 5)),  # the fifth in a row: give up
        (4, 10.0, Verdict(True, 0.5, 0)),  # lived past early_seconds: the count starts over
    ],
)
def test_restart_policy(early_exits: int, ran: float, expected: Verdict) -> None:
    assert after_exit(POLICY, early_exits, ran) == expected


def test_the_wait_is_capped() -> None:
    policy = RestartPolicy(max_early_exits=100, base_delay=1, max_delay=30)
    assert after_exit(policy, 20, 0.1).delay == 30


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (1, "exited with code 1"),
        (0, "exited with code 0"),
        (-9, "was killed by SIGKILL"),
        (-15, "was killed by SIGTERM"),
    ],
)
def test_describe_exit(code: int, said: str) -> None:
    assert describe_exit(code) == said


def test_last_words_of_a_json_line() -> None:
    assert last_words('{"level": "critical", "msg": "cannot open x"}\n') == "cannot open x"
    assert last_words("tributary: port 8080 is busy\n") == "tributary: port 8080 is busy"


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_a_child_that_keeps_dying_at_start_ends_the_run_with_its_last_words(tmp_path: Path) -> None:
    dying = script(
        tmp_path, "dying", "import sys\nprint('cannot bind the thing: denied', file=sys.stderr)\nsys.exit(3)\n"
    )
    sink = io.BytesIO()
    policy = RestartPolicy(early_seconds=10, max_early_exits=3, base_delay=0.05, max_delay=0.1)
    supervisor = Supervisor([ChildSpec("worker", dying)], {}, policy=policy, sink=sink)
    assert supervisor.run() == 1
    assert supervisor.failure == (
        "worker keeps dying at start (3 exits within 10 s of starting; the last one exited with code 3): "
        "cannot bind the thing: denied"
    )
    assert sink.getvalue().count(b"cannot bind the thing") == 3  # every start's stderr passed through


def test_a_child_that_exits_is_restarted_and_ctrl_c_stops_children_in_order(tmp_path: Path) -> None:
    record = tmp_path / "record"
    # Each child notes its start and, on SIGTERM, its stop; "flaky" dies once after starting.
    body = (
        "import os, signal, sys, time\n"
        f"record = {str(record)!r}\n"
        "name = sys.argv[1]\n"
        "def note(what):\n"
        "    with open(record, 'a') as f: f.write(f'{name} {what}\\n')\n"
        "def stop(*_):\n"
        "    note('stopped'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "note('started')\n"
        "if name == 'flaky' and open(record).read().count('flaky started') == 1: sys.exit(1)\n"
        "while True: time.sleep(0.05)\n"
    )
    child = script(tmp_path, "child", body)
    specs = [
        ChildSpec("web", [*child, "web"], stop_group=0, grace_seconds=5),
        ChildSpec("flaky", [*child, "flaky"], stop_group=1, grace_seconds=5),
        ChildSpec("steady", [*child, "steady"], stop_group=1, grace_seconds=5),
    ]
    policy = RestartPolicy(base_delay=0.05)
    supervisor = Supervisor(specs, {}, policy=policy, sink=io.BytesIO())

    def lines() -> list[str]:
        return record.read_text().splitlines() if record.exists() else []

    def interrupt_when_all_run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if lines().count("flaky started") == 2 and "web started" in lines() and "steady started" in lines():
                supervisor.request_stop(signal.SIGINT)
                return
            time.sleep(0.05)
        supervisor.request_stop(signal.SIGINT)

    threading.Thread(target=interrupt_when_all_run, daemon=True).start()
    assert supervisor.run() == 0
    seen = lines()
    assert seen.count("flaky started") == 2  # restarted once
    stops = [line for line in seen if line.endswith("stopped")]
    assert stops[0] == "web stopped" and sorted(stops[1:]) == ["flaky stopped", "steady stopped"]
    assert all(c.process is not None and c.process.poll() is not None for c in supervisor.children)
