"""The SSRF guard refuses non-public addresses by default, for sources and every redirect hop."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver

from service.config import FetchConfig
from service.errors import ErrorKind, FetchError
from service.urls import is_public_address as is_public
from tests.feedserver import FeedServer
from tests.pollkit import poll_settings, resources
from workers.fetch.client import fetch, new_session
from workers.fetch.netguard import BlockedAddress, GuardedResolver
from workers.poll.pipeline import PollStatus, poll_source


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "224.0.0.1",
        "0.0.0.0",
        "240.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::",
        "::ffff:127.0.0.1",
        "not-an-ip",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(address)


class StubResolver(AbstractResolver):
    """DNS without a network: fixed answers per host name."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):  # type: ignore[no-untyped-def]
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, f"unknown host {host}")
        return [
            {"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def test_resolver_keeps_public_answers_and_refuses_private_only_hosts() -> None:
    resolver = GuardedResolver(
        StubResolver({"news.example": ["93.184.216.34", "10.0.0.7"], "intranet.example": ["10.0.0.7"]})
    )
    assert [a["host"] for a in await resolver.resolve("news.example", 80)] == ["93.184.216.34"]
    with pytest.raises(BlockedAddress, match=r"intranet\.example resolves to 10\.0\.0\.7"):
        await resolver.resolve("intranet.example", 80)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_default_session_refuses_loopback(feed_server: FeedServer, host: str) -> None:
    feed_server.set("/feed.xml", "<rss/>")
    config = FetchConfig()
    url = f"http://{host}:{feed_server.port}/feed.xml"
    async with new_session(config) as session:
        with pytest.raises(FetchError) as caught:
            await fetch(session, url, source_id="s", config=config)
    assert caught.value.kind is ErrorKind.BLOCKED
    assert "allow_private_networks" in caught.value.message
    assert feed_server.requests == []


async def test_redirect_from_an_allowed_host_to_a_private_address_is_refused(feed_server: FeedServer) -> None:
    # 127.0.0.1 stands in for a public host; 127.0.0.2 (and 10.x) for the private target.
    target = f"http://127.0.0.2:{feed_server.port}/secret"
    feed_server.set("/hop", b"", status=302, headers={"Location": target})
    config = FetchConfig()
    async with new_session(config, address_allowed=lambda a: a == "127.0.0.1") as session:
        with pytest.raises(FetchError) as caught:
            await fetch(session, feed_server.url("/hop"), source_id="s", config=config)
    assert caught.value.kind is ErrorKind.BLOCKED and "127.0.0.2" in caught.value.message
    assert [r.path for r in feed_server.requests] == ["/hop"]


async def test_redirect_to_a_private_host_name_is_refused(feed_server: FeedServer) -> None:
    feed_server.set("/hop", b"", status=301, headers={"Location": "http://metadata.internal/latest"})
    config = FetchConfig()
    resolver = StubResolver({"metadata.internal": ["169.254.169.254"]})
    async with new_session(config, resolver=resolver, address_allowed=lambda a: a == "127.0.0.1") as session:
        with pytest.raises(FetchError) as caught:
            await fetch(session, feed_server.url("/hop"), source_id="s", config=config)
    assert caught.value.kind is ErrorKind.BLOCKED and "metadata.internal" in caught.value.message


async def test_blocked_source_is_recorded_with_kind_blocked(redis, clock, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    url = feed_server.set("/feed.xml", "<rss/>")
    settings = poll_settings([{"id": "s", "url": url}], allow_private_networks=False)
    res = resources(settings, redis, clock)
    try:
        report = await poll_source(res, settings.sources[0])
    finally:
        await res.session.close()
    assert report.status is PollStatus.FAILED and report.error_kind is ErrorKind.BLOCKED
    state = await res.store.sources.get("s")
    assert state.last_error_kind == "blocked" and "SSRF" in (state.last_error or "")
