"""Middlewares bound to routes (service/web/bound_routes.py): aiohttp's order and ``request.app``,
sub-applications inside their parent's chain, every answer counted for ``/metrics``, and no
application of the real server carrying aiohttp ``middlewares=`` (which would wrap every request,
the cached feeds' included)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import SecretStr

from service.config import settings_from_dict
from service.web.app import create_app
from service.web.appkeys import REQUEST_COUNTS
from service.web.bound_routes import BoundRoutes, allowed_elsewhere
from service.web.metrics_endpoint import RequestCounts

NAME = web.AppKey("name", str)
SEEN = web.RequestKey("seen", list[str])


def tagging(tag: str) -> Middleware:
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request.setdefault(SEEN, []).append(f"{tag}:{request.app[NAME]}")
        response = await handler(request)
        response.headers.add("X-Order", tag)
        return response

    return middleware


async def test_order_sub_applications_and_counts(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    counts = RequestCounts()
    root, sub = web.Application(), web.Application()
    root[NAME], sub[NAME] = "root", "sub"
    routes = BoundRoutes(root, [counts.middleware, tagging("a"), tagging("b")])

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=",".join(request[SEEN]) + f"|{request.app[NAME]}")

    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPGone()

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def bare(request: web.Request) -> web.Response:
        return web.Response(text="bare")

    async def not_found(request: web.Request) -> web.Response:
        allowed = await allowed_elsewhere(request)
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
        raise web.HTTPNotFound()

    routes.add_get("/page", page)
    routes.add_get("/gone", gone)
    routes.add_get("/broken", broken)
    routes.add_get("/bare", bare, bound=False)
    inner = routes.sub(sub, [tagging("c")])
    inner.add_get("/page", page)
    inner.add_catch_all(not_found)
    root.add_subapp("/sub", sub)
    routes.add_catch_all(not_found)
    assert not root.middlewares and not sub.middlewares
    client = await aiohttp_client(root)

    response = await client.get("/page")
    assert await response.text() == "a:root,b:root|root"
    assert response.headers.getall("X-Order") == ["b", "a"]  # the first middleware is the outermost
    response = await client.get("/sub/page")
    assert await response.text() == "a:sub,b:sub,c:sub|sub"  # the parent's chain, then the sub-app's own
    assert (await client.get("/bare")).headers.get("X-Order") is None
    assert (await client.get("/gone")).status == 410
    assert (await client.get("/broken")).status == 500
    assert (await client.get("/nowhere")).status == 404
    assert (await client.get("/sub/nowhere")).status == 404
    response = await client.post("/sub/page")
    assert response.status == 405 and response.headers["Allow"] == "GET,HEAD"

    by_route = counts.by_route()
    assert by_route[("/page", "200")] == 1 and by_route[("/sub/page", "200")] == 1
    assert by_route[("/gone", "410")] == 1 and by_route[("/broken", "500")] == 1
    assert by_route[("other", "404")] == 2  # the catch-alls, the root's and the sub-app's
    assert by_route[("other", "405")] == 1
    assert ("/bare", "200") not in by_route  # an unbound route counts its own answers


def test_the_server_runs_no_aiohttp_middleware() -> None:
    settings = settings_from_dict(
        {
            "sources": [{"id": "s", "url": "https://example.org/feed.xml"}],
            "feeds": [{"name": "all", "title": "All", "sources": ["s"]}],
        }
    ).model_copy(update={"admin_key": SecretStr("k" * 32)})
    app = create_app(settings, redis_url="redis://127.0.0.1:1/0")
    apps = [
        app,
        *(resource._app for resource in app.router.resources() if isinstance(resource, web.PrefixedSubAppResource)),
    ]
    assert len(apps) == 3  # the partner API and the admin page
    assert all(not a.middlewares for a in apps)
    assert isinstance(app[REQUEST_COUNTS], RequestCounts)
