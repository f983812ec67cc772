"""One exception tree. Every error about a source carries its id and chains its cause."""

from __future__ import annotations

from enum import StrEnum


class TributaryError(Exception):
    """Base of every error Tributary raises on purpose."""


class ConfigError(TributaryError):
    """The config file or environment is invalid; the message names file, key and reason."""


class StoreError(TributaryError):
    """Redis answered something the store cannot use."""


class ErrorKind(StrEnum):
    """Failure kinds an operator can read on a source."""

    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    TOO_LARGE = "too_large"
    NOT_A_FEED = "not_a_feed"
    PARSE_ERROR = "parse_error"
    BLOCKED = "blocked"
    BAD_URL = "bad_url"  # a URL no request can be made to (a redirect to http://[::1/x, a port 99999)
    INTERNAL = "internal"


class SourceError(TributaryError):
    """Polling one source failed; ``kind`` sorts the failure for operators."""

    def __init__(self, source_id: str, kind: ErrorKind, message: str, *, status: int | None = None):
        super().__init__(f"{source_id}: {kind}: {message}")
        self.source_id = source_id
        self.kind = kind
        self.message = message
        self.status = status


class FetchError(SourceError):
    """The HTTP side failed: DNS, connect, TLS, timeout, status or size."""


class ParseError(SourceError):
    """The body was fetched but no usable feed could be read from it."""
