"""A small real WebSub hub on 127.0.0.1 for testing Tributary as a subscriber. No mocks.

``POST /hub`` takes (un)subscription requests and answers them as told (``answer``), then
verifies intent at the callback with a GET (before answering when ``verify`` is ``sync``, in a
background task when ``async``, never when ``none``); a subscription counts only once the
callback echoed the challenge. :meth:`LocalHub.publish` delivers to a topic's subscribers: a
fat ping (a body) or a thin one (no body), signed with the subscriber's secret or forged.
:meth:`LocalHub.deny` sends ``hub.mode=denied``. Every request and answer is recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.feedserver import LocalServer


@dataclass
class HubSubscription:
    topic: str
    callback: str
    secret: str | None
    lease_seconds: int


@dataclass
class Verification:
    mode: str
    callback: str
    status: int
    echoed: bool


@dataclass
class LocalHub(LocalServer):
    answer: int = 202
    verify: str = "async"  # async | sync | none
    max_lease_seconds: int = 864000
    requests: list[dict[str, str]] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    subscriptions: dict[tuple[str, str], HubSubscription] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/hub", self._request)

    async def _request(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.requests.append(form)
        if not 200 <= self.answer < 300:
            return web.Response(status=self.answer, text="no, thank you")
        if self.verify == "sync":
            await self._verify(form)
            return web.Response(status=204)
        if self.verify == "async":
            task = asyncio.ensure_future(self._verify(form))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=202, text="Accepted")

    async def _verify(self, form: dict[str, str]) -> None:
        mode, topic, callback = form["hub.mode"], form["hub.topic"], form["hub.callback"]
        challenge = secrets.token_urlsafe(16)
        lease = min(int(form.get("hub.lease_seconds") or 86400), self.max_lease_seconds)
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(lease)
        status, body = await self._get(callback, params)
        echoed = 200 <= status < 300 and body.strip() == challenge
        self.verifications.append(Verification(mode, callback, status, echoed))
        if not echoed:
            return
        if mode == "subscribe":
            self.subscriptions[(topic, callback)] = HubSubscription(topic, callback, form.get("hub.secret"), lease)
        else:
            self.subscriptions.pop((topic, callback), None)

    async def _get(self, callback: str, params: dict[str, str]) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{callback}?{urlencode(params)}", allow_redirects=False) as response,
        ):
            return response.status, await response.text()

    async def settled(self) -> None:
        """Every verification started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def deny(self, topic: str, callback: str, reason: str = "not allowed") -> int:
        status, _ = await self._get(callback, {"hub.mode": "denied", "hub.topic": topic, "hub.reason": reason})
        return status

    async def verify_as(self, callback: str, **params: str) -> tuple[int, str]:
        """A GET at the callback with the given hub.* parameters (a forger or a confused hub)."""
        return await self._get(callback, {f"hub.{k}": v for k, v in params.items()})

    def subscriber(self, topic: str) -> HubSubscription:
        [found] = [s for (t, _), s in self.subscriptions.items() if t == topic]
        return found

    async def publish(
        self,
        topic: str,
        body: bytes = b"",
        *,
        content_type: str = "application/rss+xml",
        algorithm: str = "sha256",
        forge: bool = False,
        signed: bool = True,
    ) -> list[int]:
        """Deliver ``body`` (empty: a thin ping) to every subscriber of ``topic``; their statuses."""
        subscribers = [s for (t, _), s in self.subscriptions.items() if t == topic]
        options = {"content_type": content_type, "algorithm": algorithm, "forge": forge, "signed": signed}
        return [await self.deliver(sub, body, **options) for sub in subscribers]  # type: ignore[arg-type]

    async def deliver(
        self,
        sub: HubSubscription,
        body: bytes,
        *,
        content_type: str = "application/rss+xml",
        algorithm: str = "sha256",
        forge: bool = False,
        signed: bool = True,
    ) -> int:
        headers = {"Content-Type": content_type, "Link": f'<{self.url}>; rel="hub", <{sub.topic}>; rel="self"'}
        if signed and sub.secret:
            key = b"not-the-secret" if forge else sub.secret.encode()
            digest = hmac.new(key, body, getattr(hashlib, algorithm)).hexdigest()
            headers["X-Hub-Signature"] = f"{algorithm}={digest}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(sub.callback, data=body, headers=headers) as response,
        ):
            await response.read()
            return response.status
