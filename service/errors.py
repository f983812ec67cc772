"""One exception tree. Every error about a source carries its id and chains its cause."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class TributaryError(Exception):
    """Base of every error Tributary raises on purpose."""


class ConfigError(TributaryError):
    """The config file or environment is invalid; the message names file, key and reason."""


class StoreError(TributaryError):
    """Redis holds something the store cannot read (a corrupt or foreign entry)."""


class WriteConflict(TributaryError):
    """An optimistic write (WATCH) kept losing to concurrent writers; safe to try again later."""


class ErrorKind(StrEnum):
    """Failure kinds an operator can read on a source (``last_error_kind``)."""

    DNS = "dns"  # the host name does not resolve
    CONNECT = "connect"  # refused, reset or unreachable
    TIMEOUT = "timeout"
    TLS = "tls"
    BLOCKED = "blocked"  # the SSRF guard refused the address, or the URL is not HTTP(S)
    AUTH = "auth"  # 401, 403
    NOT_FOUND = "not_found"  # 404
    GONE = "gone"  # 410: the publisher removed the feed
    RATE_LIMITED = "rate_limited"  # 429
    CLIENT_ERROR = "client_error"  # any other 4xx
    SERVER = "server"  # 5xx
    REDIRECT_LOOP = "redirect_loop"  # more redirect hops than [fetch] max_redirects
    BAD_REDIRECT = "bad_redirect"  # a 3xx that cannot be followed (no Location, 300, 305)
    TOO_LARGE = "too_large"
    NOT_A_FEED = "not_a_feed"
    BAD_URL = "bad_url"  # a URL no request can be made to (a redirect to http://[::1/x, a port 99999)
    PARSE = "parse"  # looks like a feed (or a page) but cannot be read
    INTERNAL = "internal"  # a bug of ours, logged with its traceback


_STATUS_KINDS = {
    401: ErrorKind.AUTH,
    403: ErrorKind.AUTH,
    404: ErrorKind.NOT_FOUND,
    410: ErrorKind.GONE,
    429: ErrorKind.RATE_LIMITED,
}

# Kinds stored by earlier versions (``http_4xx`` is refined by the stored ``last_status``).
_LEGACY_KINDS = {"http_5xx": ErrorKind.SERVER, "parse_error": ErrorKind.PARSE}


def kind_for_status(status: int) -> ErrorKind:
    """The kind of an error status (anything >= 300 that is neither followed nor a 304)."""
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    if status >= 500:
        return ErrorKind.SERVER
    if status >= 400:
        return ErrorKind.CLIENT_ERROR
    return ErrorKind.BAD_REDIRECT


def stored_kind(value: str, status: int | None) -> ErrorKind | None:
    """A kind read back from storage, old names included; an unknown name reads as none."""
    try:
        return ErrorKind(value)
    except ValueError:
        pass
    if value == "http_4xx":
        return kind_for_status(status) if status is not None and 400 <= status < 500 else ErrorKind.CLIENT_ERROR
    return _LEGACY_KINDS.get(value)


class SourceError(TributaryError):
    """Polling one source failed; ``kind`` sorts the failure for operators."""

    def __init__(self, source_id: str, kind: ErrorKind, message: str, *, status: int | None = None):
        super().__init__(f"{source_id}: {kind}: {message}")
        self.source_id = source_id
        self.kind = kind
        self.message = message
        self.status = status


class FetchError(SourceError):
    """The HTTP side failed: DNS, connect, TLS, timeout, status or size.

    ``headers`` are the error response's (empty when there was none): a ``Retry-After`` there
    decides the next poll.
    """

    def __init__(
        self,
        source_id: str,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(source_id, kind, message, status=status)
        self.headers: Mapping[str, str] = headers or {}


class ParseError(SourceError):
    """The body was fetched but no usable feed could be read from it."""
