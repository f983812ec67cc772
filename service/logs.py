"""Logging for every Tributary process: JSON lines for machines, one readable line for people,
the job, source and request a line is about, and no secret ever written.

Context travels in :mod:`contextvars`: a job binds its id and source, a web request binds
itself (its id is worked out only when a line is actually written, so the hot feed path pays
one context-variable set, not an id). Every line, message and traceback alike, goes through
:func:`redact` last, so a Redis password in a URL, an API key, a hub or webhook secret or an
``Authorization`` header never reaches the output.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "text", "json"]

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


_job_id: ContextVar[str | None] = ContextVar("tributary_job_id", default=None)
_source_id: ContextVar[str | None] = ContextVar("tributary_source_id", default=None)
# An aiohttp request (typed loosely: service/logs.py sits below the web layer), and its id once made.
_request: ContextVar[Any] = ContextVar("tributary_request", default=None)
_request_id: ContextVar[tuple[Any, str] | None] = ContextVar("tributary_request_id", default=None)


def bind_job(job_id: str | None) -> None:
    _job_id.set(job_id)


def bind_source(source_id: str | None) -> None:
    _source_id.set(source_id)


def bind_request(request: Any) -> None:
    """Tag the lines this request's task writes; aiohttp runs each request in its own task."""
    _request.set(request)


def request_id(request: Any) -> str:
    """The client's ``X-Request-Id`` when it is a sane token, else one made up once per request."""
    known = _request_id.get()
    if known is not None and known[0] is request:
        return known[1]
    given = request.headers.get(REQUEST_ID_HEADER, "")
    found = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
    _request_id.set((request, found))
    return found


def context() -> dict[str, str]:
    """The ids bound in the current task, for a log line."""
    found: dict[str, str] = {}
    if (job := _job_id.get()) is not None:
        found["job_id"] = job
    if (source := _source_id.get()) is not None:
        found["source_id"] = source
    if (request := _request.get()) is not None:
        found["request_id"] = request_id(request)
    return found


# -- redaction ----------------------------------------------------------------------------------

_SECRET_WORDS = r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|hub\.secret|signing[_ ]secret"  # noqa: S105 (names, not a secret)
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@"), r"\1***@"),
    # Authorization: Bearer x / Basic x, in headers, reprs and messages
    (re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token)\s+)?[^\s,'\"}]+"), r"\1\2 ***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    # Tributary's API keys carry a greppable prefix
    (re.compile(r"\btrib_[A-Za-z0-9_-]{8,}"), "trib_***"),
    # key=value, "key": "value" and "X-Api-Key: value" where the key names a secret (cursor_secret too)
    (re.compile(rf"(?i)\b([\w.-]*(?:{_SECRET_WORDS}))(\s*=\s*)[^\s&,;'\"]+"), r"\1\2***"),
    (re.compile(rf"(?i)(['\"][\w.-]*(?:{_SECRET_WORDS})['\"]\s*:\s*['\"])[^'\"]*"), r"\1***"),
    (re.compile(rf"(?i)\b([\w-]*(?:{_SECRET_WORDS}):\s*)[^\s,;'\"]+"), r"\1***"),
    # "the signing secret XYZ", "token XYZ": a long opaque word right after the name
    (re.compile(rf"(?i)\b({_SECRET_WORDS})(\s+)(?!\*\*\*)([A-Za-z0-9_-]{{16,}})"), r"\1\2***"),
]


def redact(text: str) -> str:
    """``text`` with every secret it shows replaced by ``***``."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# -- formatters ---------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the bound ids, pid, and exc when any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
            **context(),
            "pid": record.process,
        }
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        elif record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01 WARNING tributary.worker [source=bbc job=poll:bbc:17] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ctx)s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        ids = context()
        record.ctx = (" [" + " ".join(f"{k.removesuffix('_id')}={v}" for k, v in ids.items()) + "]") if ids else ""
        return redact(super().format(record))


def resolve_format(wanted: LogFormat, stream: TextIO) -> Literal["text", "json"]:
    if wanted != "auto":
        return wanted
    try:
        return "text" if stream.isatty() else "json"
    except ValueError:  # a closed stream
        return "json"


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto", stream: TextIO | None = None) -> str:
    """Send every logger's lines to stderr in ``fmt``; returns the format chosen ("text"/"json")."""
    stream = stream or sys.stderr
    chosen = resolve_format(fmt, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    if root.level > logging.DEBUG:
        # arq logs every job start and end; our own poll summary says what matters.
        logging.getLogger("arq.worker").setLevel(logging.WARNING)
        logging.getLogger("arq.jobs").setLevel(logging.WARNING)
    return chosen
