"""HTTP fetching: conditional GET, timeouts, a streaming body cap, failures sorted into kinds."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp
from pydantic import BaseModel, ConfigDict

from service.config import FetchConfig
from service.errors import ErrorKind, FetchError

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.1"
)
CHUNK = 64 * 1024


class FetchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str  # final URL after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes = b""

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


def client_timeout(config: FetchConfig) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=config.timeout_seconds, sock_connect=config.connect_timeout_seconds, sock_read=config.timeout_seconds
    )


def new_session(config: FetchConfig) -> aiohttp.ClientSession:
    """One session per worker process; its connector pools connections across sources."""
    return aiohttp.ClientSession(
        timeout=client_timeout(config),
        headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        connector=aiohttp.TCPConnector(limit=200, limit_per_host=8, ttl_dns_cache=300),
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
    try:
        async with session.get(url, headers=headers, max_redirects=config.max_redirects) as response:
            response_headers = {k.lower(): v for k, v in response.headers.items()}
            if response.status == 304:
                return FetchResult(url=str(response.url), status=304, headers=response_headers)
            if response.status >= 400:
                kind = ErrorKind.HTTP_5XX if response.status >= 500 else ErrorKind.HTTP_4XX
                raise FetchError(source_id, kind, f"HTTP {response.status} {response.reason}", status=response.status)
            body = await _read_capped(response, config.max_body_bytes, source_id)
            return FetchResult(url=str(response.url), status=response.status, headers=response_headers, body=body)
    except FetchError:
        raise
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise FetchError(source_id, ErrorKind.TIMEOUT, f"no complete answer within {config.timeout_seconds}s") from exc
    except aiohttp.TooManyRedirects as exc:
        raise FetchError(source_id, ErrorKind.HTTP_4XX, f"more than {config.max_redirects} redirects") from exc
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise FetchError(source_id, ErrorKind.TLS, str(exc)) from exc
    except aiohttp.ClientConnectorDNSError as exc:
        raise FetchError(source_id, ErrorKind.DNS, str(exc)) from exc
    except aiohttp.ClientConnectorError as exc:
        raise FetchError(source_id, ErrorKind.CONNECT, str(exc)) from exc
    except (aiohttp.ClientError, ValueError) as exc:
        raise FetchError(source_id, ErrorKind.CONNECT, f"{type(exc).__name__}: {exc}") from exc


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
