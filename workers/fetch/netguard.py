"""SSRF guard: outgoing requests may not reach loopback, private, link-local or other
non-public addresses unless ``[fetch] allow_private_networks`` says so.

The check sits in the connector of every session :func:`workers.fetch.client.new_session` builds, at
two points: the resolver drops refused addresses of a host name (a clear error naming the
host), and the socket factory refuses the address actually being connected to. The second one
also covers IP-literal URLs (aiohttp does not resolve those) and DNS answers that change
between the check and the connect, for sources and every redirect hop alike.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from service.urls import is_public_address

BLOCKED_MARK = "refused by the SSRF guard"


class BlockedAddress(OSError):
    """A connection to a non-public address was refused."""

    def __init__(self, host: str, address: str):
        super().__init__(
            f"{host} resolves to {address}, {BLOCKED_MARK} (set [fetch] allow_private_networks = true to allow)"
        )
        self.host = host
        self.address = address


class GuardedResolver(AbstractResolver):
    """Wraps a resolver; answers only the public addresses of a host, else refuses it."""

    def __init__(self, inner: AbstractResolver | None = None, allowed: Callable[[str], bool] = is_public_address):
        self._inner = inner if inner is not None else DefaultResolver()
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if self._allowed(a["host"])]
        if not allowed:
            raise BlockedAddress(host, ", ".join(sorted({a["host"] for a in answers})) or "nothing")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def socket_guard(allowed: Callable[[str], bool] = is_public_address) -> Callable[[Any], socket.socket]:
    """An aiohttp ``socket_factory`` refusing to even open a socket towards a refused address."""

    def guarded_socket(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if not allowed(str(sockaddr[0])):
            raise BlockedAddress(str(sockaddr[0]), str(sockaddr[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return guarded_socket


def is_blocked_error(exc: BaseException) -> bool:
    """Whether a client error (possibly wrapping several connect attempts) came from the guard."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BlockedAddress) or BLOCKED_MARK in str(current):
            return True
        current = getattr(current, "os_error", None) or current.__cause__
    return False
