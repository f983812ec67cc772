"""``tributary run`` keeps its children alive: the web server and the worker processes.

A child that exits is logged loudly and started again after a wait that doubles with each
exit that came soon after its start. A child that keeps dying at start (``max_early_exits``
exits in a row, each within ``early_seconds`` of starting) is a fault no restart will fix: the
supervisor stops everything and exits non-zero with the child's last words, so systemd,
Kubernetes or the person at the terminal can act. Which restart to make is decided by
:func:`after_exit`, a pure function.

Children run in their own process groups, so Ctrl-C in the terminal reaches only the
supervisor, which stops them in order (the web server first, so no request finds the workers
gone; then the workers), then returns to its caller, which stops the embedded Redis. Each child
also watches its parent (:func:`exit_with_parent`): killed supervisor, no orphans.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from service.backoff import backoff_seconds
from service.store.embedded_redis import EmbeddedRedis, EmbeddedRedisError

log = logging.getLogger("tributary.supervisor")

PARENT_PID_ENV = "TRIBUTARY_PARENT_PID"
TICK_SECONDS = 0.2
LAST_WORDS_CHARS = 300


@dataclass(frozen=True)
class RestartPolicy:
    early_seconds: float = 10.0  # an exit this soon after starting counts as dying at start
    max_early_exits: int = 5  # that many in a row: give up
    base_delay: float = 0.5  # wait before the first restart; doubles with each early exit
    max_delay: float = 30.0


@dataclass(frozen=True)
class Verdict:
    restart: bool
    delay: float
    early_exits: int  # consecutive exits soon after start, this one included


def after_exit(policy: RestartPolicy, early_exits: int, ran_seconds: float) -> Verdict:
    """What to do when a child that ran ``ran_seconds`` exits after ``early_exits`` early exits in a row."""
    early = ran_seconds < policy.early_seconds
    count = early_exits + 1 if early else 0
    if count >= policy.max_early_exits:
        return Verdict(False, 0.0, count)
    delay = backoff_seconds(max(count, 1), base=policy.base_delay, cap=policy.max_delay, jitter=0)
    return Verdict(True, delay, count)


def describe_exit(returncode: int) -> str:
    """``was killed by SIGKILL``, ``exited with code 1``."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def last_words(line: str) -> str:
    """A child's last stderr line, as a person reads it (the message of a JSON log line)."""
    text = line.strip()
    if text.startswith("{"):
        with contextlib.suppress(ValueError, AttributeError):
            text = str(json.loads(text).get("msg", text))
    return text[:LAST_WORDS_CHARS]


@dataclass
class ChildSpec:
    name: str  # "web", "worker-1", ...
    argv: list[str]
    stop_group: int = 0  # stopped in ascending order; a group is stopped together
    grace_seconds: float = 30.0  # from SIGTERM to SIGKILL
    pass_fds: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the supervisor's


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    early_exits: int = 0
    restart_at: float | None = None
    last_line: str = ""
    _reader: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: Mapping[str, str], now: float, sink: IO[bytes]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            self.spec.argv,
            env={**env, **self.spec.env},
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            process_group=0,  # the terminal's Ctrl-C is for the supervisor, which stops us in order
            pass_fds=self.spec.pass_fds,
        )
        self.started_at, self.restart_at = now, None
        self._reader = threading.Thread(
            target=self._forward, args=(self.process.stderr, sink), name=f"{self.spec.name}-stderr", daemon=True
        )
        self._reader.start()

    def _forward(self, pipe: IO[bytes] | None, sink: IO[bytes]) -> None:
        """Pass the child's stderr through unchanged, remembering its last line."""
        if pipe is None:
            return
        for raw in iter(pipe.readline, b""):
            with contextlib.suppress(OSError, ValueError):
                sink.write(raw)
                sink.flush()
            if raw.strip():
                self.last_line = raw.decode(errors="replace")
        pipe.close()

    def drain(self, timeout: float = 2.0) -> None:
        """Let the stderr reader pass on the last lines of an exited child."""
        if self._reader is not None:
            self._reader.join(timeout)


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        env: Mapping[str, str],
        *,
        policy: RestartPolicy | None = None,
        watch: Callable[[], str | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sink: IO[bytes] | None = None,
    ) -> None:
        self.children = [Child(spec) for spec in specs]
        self.env = {**env, PARENT_PID_ENV: str(os.getpid())}
        self.policy = policy or RestartPolicy()
        self.watch = watch  # called every tick; returns a reason to give up, or None
        self.monotonic = monotonic
        self.sink = sink or sys.stderr.buffer
        self.failure: str | None = None
        self._stopping = False
        self._hurry = False

    def request_stop(self, signum: int = signal.SIGTERM, _frame: object = None) -> None:
        if self._stopping:
            self._hurry = True  # a second Ctrl-C: do not wait for anyone
        self._stopping = True

    def run(self) -> int:
        """Start every child and keep them running until a signal (0) or a child that keeps
        dying at start (1, reason in :attr:`failure`). Every child is stopped on return."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                child.start(self.env, self.monotonic(), self.sink)
            while not self._stopping:
                self._tick()
                if not self._stopping:
                    time.sleep(TICK_SECONDS)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self.failure else 0

    def _tick(self) -> None:
        now = self.monotonic()
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                continue
            if child.restart_at is None:
                self._exited(child, now)
            elif now >= child.restart_at:
                log.warning("starting %s again", child.spec.name)
                child.start(self.env, now, self.sink)
            if self._stopping:
                return
        if self.watch is not None:
            reason = self.watch()
            if reason is not None:
                self._give_up(reason)

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None  # noqa: S101 (started before the first tick)
        child.drain()
        ran = now - child.started_at
        how = describe_exit(child.process.returncode)
        verdict = after_exit(self.policy, child.early_exits, ran)
        child.early_exits = verdict.early_exits
        words = last_words(child.last_line)
        if not verdict.restart:
            self._give_up(
                f"{child.spec.name} keeps dying at start ({verdict.early_exits} exits within "
                f"{self.policy.early_seconds:g} s of starting; the last one {how})" + (f": {words}" if words else "")
            )
            return
        log.error(
            "%s (pid %d) %s after %.1f s%s; restarting in %.1f s",
            child.spec.name,
            child.process.pid,
            how,
            ran,
            f" (its last line: {words})" if words else "",
            verdict.delay,
        )
        child.restart_at = now + verdict.delay

    def _give_up(self, reason: str) -> None:
        self.failure = reason
        log.critical("giving up: %s", reason)
        self._stopping = True

    def _stop_all(self) -> None:
        for group in sorted({c.spec.stop_group for c in self.children}):
            members = [c for c in self.children if c.spec.stop_group == group]
            running = [c for c in members if c.process is not None and c.process.poll() is None]
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            for child in running:
                self._wait_or_kill(child)
            for child in members:
                child.drain(0.5)

    def _wait_or_kill(self, child: Child) -> None:
        process = child.process
        assert process is not None  # noqa: S101
        deadline = self.monotonic() + child.spec.grace_seconds
        while process.poll() is None and not self._hurry and self.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            log.warning("%s (pid %d) did not stop in time: killing it", child.spec.name, process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


class RedisKeeper:
    """The embedded Redis ``tributary run`` started is one more child: started again (same data
    dir, so its AOF) when it dies, given up on like the others when it keeps dying at start."""

    def __init__(
        self,
        embedded: EmbeddedRedis,
        policy: RestartPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.embedded = embedded
        self.policy = policy or RestartPolicy()
        self.monotonic = monotonic
        self.started_at = monotonic()
        self.early_exits = 0
        self.restart_at: float | None = None

    def __call__(self) -> str | None:
        now = self.monotonic()
        if self.restart_at is None:
            if not self.embedded.exited():
                return None
            how = describe_exit(self.embedded.returncode or 0)
            return self._exited(now, f"{how}: {self.embedded.last_words()}")
        if now < self.restart_at:
            return None
        self.restart_at, self.started_at = None, now
        try:
            self.embedded.start()
        except EmbeddedRedisError as exc:
            return self._exited(now, str(exc))
        log.warning("embedded redis started again at %s", self.embedded.socket)
        return None

    def _exited(self, now: float, why: str) -> str | None:
        verdict = after_exit(self.policy, self.early_exits, now - self.started_at)
        self.early_exits = verdict.early_exits
        if not verdict.restart:
            return f"the embedded Redis keeps dying at start ({verdict.early_exits} times): {why}"
        log.error("the embedded redis-server stopped (%s); starting it again in %.1f s", why, verdict.delay)
        self.restart_at = now + verdict.delay
        return None


def exit_with_parent() -> None:
    """In a supervised child: stop (SIGTERM to ourselves) if the supervisor disappears."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent or not parent.isdigit():
        return
    ppid = int(parent)

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
