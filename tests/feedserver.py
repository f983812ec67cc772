"""A local HTTP server that serves fixture bodies with the headers a test sets, answers
conditional requests with 304 like a well-behaved publisher, and records every request."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True  # send ETag/Last-Modified and honour them

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class LocalServer:
    """An aiohttp app on 127.0.0.1 at a free port; subclasses add their routes."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FeedServer(LocalServer):
    LAST_MODIFIED = "Tue, 24 Nov 2026 10:00:00 GMT"

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []

    def set(
        self,
        path: str,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str = "application/xml",
        headers: dict[str, str] | None = None,
        conditional: bool = True,
    ) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, status, {"Content-Type": content_type, **(headers or {})}, conditional)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = self.routes.get(request.path)
        if route is None:
            self.requests.append(Seen(request.path, dict(request.headers), 404))
            return web.Response(status=404, text="not found")
        headers = dict(route.headers)
        if route.conditional and route.status == 200:
            headers.update({"ETag": route.etag, "Last-Modified": self.LAST_MODIFIED})
            if request.headers.get("If-None-Match") == route.etag:
                self.requests.append(Seen(request.path, dict(request.headers), 304))
                freshness = {
                    k: v for k, v in route.headers.items() if k.lower() in ("cache-control", "expires", "date")
                }
                return web.Response(status=304, headers={"ETag": route.etag, **freshness})
        self.requests.append(Seen(request.path, dict(request.headers), route.status))
        return web.Response(body=route.body, status=route.status, headers=headers)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)
