"""HTTP fetching: conditional GET, timeouts, a streaming body cap, failures sorted into kinds.

Redirects are followed here, hop by hop (at most ``[fetch] max_redirects``), so the caller
learns whether the feed moved for good (every hop a 301/308) and every hop goes through the
session's SSRF guard (:mod:`workers.fetch.netguard`).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from service.config import FetchConfig, check_web_url
from service.errors import ErrorKind, FetchError, kind_for_status
from service.urls import is_public_address
from workers.fetch import netguard

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.1"
)
CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT = frozenset({301, 308})


# Not frozen: built for every poll, and a frozen dataclass's __init__ costs about three
# times a plain one's.
@dataclass(slots=True)
class FetchResult:
    """A response the fetch returns (2xx, 304): built here from parts already checked, so a plain
    dataclass (no validation on the poll's path)."""

    url: str  # final URL after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    redirects: tuple[tuple[int, str], ...] = ()
    """(status, target) per hop followed."""

    @property
    def permanent_url(self) -> str | None:
        """The new address when every hop was a permanent redirect (301/308), else None."""
        if self.redirects and all(status in PERMANENT for status, _ in self.redirects):
            return self.redirects[-1][1]
        return None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def folded_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Names lower case; a repeated header joined with ``, `` (RFC 9110 5.3), so that several
    ``Link`` headers (a hub in one, self in another) all survive."""
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def client_timeout(config: FetchConfig) -> aiohttp.ClientTimeout:
    """``total`` bounds each request from its start to the last byte of its body read, so no
    read timeout as long beside it: it could only fire first within the total's rounding to the
    second, and it costs a timer per read."""
    return aiohttp.ClientTimeout(total=config.timeout_seconds, sock_connect=config.connect_timeout_seconds)


def new_connector(
    config: FetchConfig,
    resolver: aiohttp.abc.AbstractResolver | None = None,
    *,
    address_allowed: Callable[[str], bool] = is_public_address,
    limit: int = 200,
) -> aiohttp.TCPConnector:
    """The pool every outgoing request uses; refuses non-public addresses unless allowed."""
    if config.allow_private_networks:
        return aiohttp.TCPConnector(limit=limit, limit_per_host=8, ttl_dns_cache=300, resolver=resolver)
    return aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=8,
        ttl_dns_cache=300,
        resolver=netguard.GuardedResolver(resolver, address_allowed),
        socket_factory=netguard.socket_guard(address_allowed),
    )


def new_session(
    config: FetchConfig,
    *,
    resolver: aiohttp.abc.AbstractResolver | None = None,
    address_allowed: Callable[[str], bool] = is_public_address,
    limit: int = 200,
) -> aiohttp.ClientSession:
    """One session per worker process; its connector pools connections across sources.

    Every user (polls, WebSub callbacks) gets the SSRF guard of :func:`new_connector`;
    ``resolver`` and ``address_allowed`` exist for tests and the benchmark.
    """
    return aiohttp.ClientSession(
        timeout=client_timeout(config),
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        connector=new_connector(config, resolver, address_allowed=address_allowed, limit=limit),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    )


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    source_id: str,
    config: FetchConfig,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchResult:
    """GET ``url`` conditionally; raise :class:`FetchError` with a kind for every failure."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    redirects: list[tuple[int, str]] = []
    try:
        while True:
            _check_hop(url, source_id)
            async with session.get(_parsed(url), headers=headers, allow_redirects=False) as response:
                response_headers = folded_headers(response.headers.items())
                location = response.headers.get("Location")
                if response.status in REDIRECTS and location:
                    if len(redirects) >= config.max_redirects:
                        raise FetchError(
                            source_id,
                            ErrorKind.REDIRECT_LOOP,
                            f"more than {config.max_redirects} redirects",
                            status=response.status,
                        )
                    try:
                        url = urljoin(str(response.url), location)
                    except ValueError as exc:  # "http://[::1/x": no request can be made to it
                        raise FetchError(
                            source_id, ErrorKind.BAD_URL, f"redirect to an unusable URL: {location[:300]}"
                        ) from exc
                    redirects.append((response.status, url))
                    continue
                if response.status == 304:
                    return FetchResult(url=url, status=304, headers=response_headers, redirects=tuple(redirects))
                if response.status >= 300:
                    raise FetchError(
                        source_id,
                        kind_for_status(response.status),
                        f"HTTP {response.status} {response.reason}",
                        status=response.status,
                        headers=response_headers,
                    )
                body = await _read_capped(response, config.max_body_bytes, source_id)
                return FetchResult(
                    url=url, status=response.status, headers=response_headers, body=body, redirects=tuple(redirects)
                )
    except FetchError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise FetchError(source_id, ErrorKind.TIMEOUT, f"no complete answer within {config.timeout_seconds}s") from exc
    except aiohttp.ClientConnectorError as exc:
        if netguard.is_blocked_error(exc):
            raise FetchError(source_id, ErrorKind.BLOCKED, f"{url}: {_blocked_message(exc)}") from exc
        if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
            raise FetchError(source_id, ErrorKind.TLS, str(exc)) from exc
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            raise FetchError(source_id, ErrorKind.DNS, str(exc)) from exc
        raise FetchError(source_id, ErrorKind.CONNECT, str(exc)) from exc
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise FetchError(source_id, ErrorKind.TLS, str(exc)) from exc
    except (aiohttp.ClientError, ValueError) as exc:
        raise FetchError(source_id, ErrorKind.CONNECT, f"{type(exc).__name__}: {exc}") from exc


def _check_hop(url: str, source_id: str) -> None:
    """Every URL asked for (the source's, each redirect target) must be one a request can go to."""
    try:
        _usable(url)
    except ValueError as exc:
        if not url[:8].lower().startswith(("http://", "https://")):
            raise FetchError(source_id, ErrorKind.BLOCKED, f"refusing to fetch a non-HTTP URL: {url[:300]}") from exc
        raise FetchError(source_id, ErrorKind.BAD_URL, f"{exc}: {url[:300]}") from exc


@functools.lru_cache(maxsize=1 << 16)
def _usable(url: str) -> None:
    """:func:`check_web_url` (a pure check), remembered for the URLs that pass it: every poll of a
    source asks it again of the same URL. A URL that fails raises each time (nothing is kept)."""
    check_web_url(url)


@functools.lru_cache(maxsize=1 << 14)
def _parsed(url: str) -> URL | str:
    """``url`` as the client's URL object: parsing it anew (yarl's own cache holds 128) costs
    about as much as the rest of a 304's request building; 16,384 of them hold about 12 MB."""
    try:
        return URL(url)
    except ValueError:
        return url  # for aiohttp to refuse as it always has


def _blocked_message(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, netguard.BlockedAddress):
            return str(current)
        current = getattr(current, "os_error", None) or current.__cause__
    return f"address {netguard.BLOCKED_MARK}"


async def _read_capped(response: aiohttp.ClientResponse, limit: int, source_id: str) -> bytes:
    """Read the (decompressed) body, aborting as soon as it passes ``limit``: never buffer more."""
    declared = response.content_length
    if declared is not None and declared > limit and "content-encoding" not in response.headers:
        raise FetchError(source_id, ErrorKind.TOO_LARGE, f"Content-Length {declared} exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise FetchError(source_id, ErrorKind.TOO_LARGE, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
