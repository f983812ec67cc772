"""A local WebSub subscriber: answers verification GETs as each callback is told to and records
every content delivery POST. Real HTTP on 127.0.0.1, no mocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tests.feedserver import LocalServer


@dataclass
class Callback:
    verify: str = "echo"  # echo | wrong | 404 | redirect (302 to itself, which would echo)
    post_statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    gets: list[dict[str, str]] = field(default_factory=list)
    posts: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)  # headers, body, answer

    @property
    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for headers, body, status in self.posts if 200 <= status < 300]


class Subscriber(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.callbacks: dict[str, Callback] = {}

    def callback(self, name: str, **behaviour: object) -> str:
        self.callbacks[name] = Callback(**behaviour)  # type: ignore[arg-type]
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/cb/{name}?token=t-{name}"

    async def _get(self, request: web.Request) -> web.Response:
        cb = self.callbacks[request.match_info["name"]]
        cb.gets.append(dict(request.query))
        if request.query.get("hub.mode") == "denied":
            return web.Response(text="ok")
        if cb.verify == "404":
            return web.Response(status=404, text="not mine")
        if cb.verify == "redirect" and "followed" not in request.query:
            raise web.HTTPFound(f"{request.path_qs}&followed=1")
        if cb.verify == "wrong":
            return web.Response(text="not-the-challenge")
        return web.Response(text=request.query["hub.challenge"])

    async def _post(self, request: web.Request) -> web.Response:
        cb = self.callbacks[request.match_info["name"]]
        status = cb.post_statuses.pop(0) if cb.post_statuses else 200
        cb.posts.append((dict(request.headers), await request.read(), status))
        return web.Response(status=status, text="thanks")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/cb/{name}", self._get)
        app.router.add_post("/cb/{name}", self._post)
