"""A command that cannot start says why in one line on stderr and exits non-zero: no traceback.
Real ``tributary`` processes, each given one fault."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import free_port

pytestmark = pytest.mark.slow


def tributary(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_") and k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "tributary", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def config(tmp_path: Path, port: int = 8080, data_dir: str = "data") -> Path:
    path = tmp_path / "tributary.toml"
    path.write_text(f'[server]\nport = {port}\n[storage]\ndata_dir = "{data_dir}"\n')
    return path


def test_a_directory_as_the_config(tmp_path: Path) -> None:
    line = one_line(tributary("--config", str(tmp_path), "serve"))
    assert line == f"tributary: {tmp_path}: is a directory, not a config file"


@pytest.mark.parametrize("verb", ["run", "serve"])
def test_a_data_dir_that_cannot_be_written(tmp_path: Path, verb: str) -> None:
    (tmp_path / "a-file").write_text("")
    line = one_line(tributary("--config", str(config(tmp_path, port=free_port(), data_dir="a-file/data")), verb))
    assert line.startswith(f"tributary: data_dir {tmp_path / 'a-file' / 'data'}: cannot write there (Not a directory)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o500)
    line = one_line(tributary("--config", str(config(tmp_path)), "serve"))
    assert line.startswith(f"tributary: data_dir {data}: cannot write there (Permission denied)")


def test_a_redis_url_with_a_bad_scheme(tmp_path: Path) -> None:
    result = tributary("--config", str(config(tmp_path)), "worker", env={"REDIS_URL": "http://:pw@localhost:6379/0"})
    line = one_line(result)
    assert line == (
        "tributary: REDIS_URL http://:***@localhost:6379/0: the scheme must be redis://, rediss:// or unix:// "
        "(got 'http')"
    )


@pytest.mark.parametrize("verb", ["run", "serve", "worker"])
def test_redis_down(tmp_path: Path, verb: str) -> None:
    closed = free_port()
    url = f"redis://:sekrit-pass@127.0.0.1:{closed}/0"
    line = one_line(tributary("--config", str(config(tmp_path, port=free_port())), verb, env={"REDIS_URL": url}))
    assert line.startswith(f"tributary: cannot reach Redis at redis://:***@127.0.0.1:{closed}/0: Error 111 connecting")
    assert "sekrit" not in line


@pytest.mark.parametrize("verb", ["run", "serve"])
def test_a_busy_port(tmp_path: Path, verb: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(tributary("--config", str(config(tmp_path, port=port)), verb))
    assert line == (
        f"tributary: port {port} on 127.0.0.1 is already in use: stop what uses it, or pick another port "
        f"([server] port, e.g. TRIBUTARY_SERVER__PORT={port + 1})"
    )
    assert not (tmp_path / "data").exists()  # said before any Redis was started


def test_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (tmp_path / "conf").mkdir()
    cfg = config(tmp_path / "conf", port=free_port(), data_dir="../state")
    cfg.write_text(cfg.read_text() + '[[sources]]\nid = "x"\nurl = "http://127.0.0.1:1/x"\n')
    result = tributary("--config", str(cfg), "enable", "x", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "appendonly.aof").exists() or any((tmp_path / "state").glob("appendonly*"))
    assert not (elsewhere / "state").exists() and not (elsewhere / "data").exists()
