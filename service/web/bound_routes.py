"""Routes whose middlewares are bound to their handlers when they are registered.

aiohttp runs an application's ``middlewares=`` per request, and once any sub-application has
some, it wraps every request of the whole server, the public feeds included, in one more
coroutine that points ``request.app`` at each application in turn. Every route is registered
through :class:`BoundRoutes` instead: the same chain (the first middleware outermost, a
sub-application's inside its parent's, ``request.app`` the route's own application), built once
per route, and a route may take none (the cached feed routes, whose handler does the little
they need itself: bench/serve.py). Each application's last route catches every other path and
method, so those pass through the chain too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


class BoundRoutes:
    """Adds routes to ``app`` with ``middlewares`` bound to each handler."""

    def __init__(self, app: web.Application, middlewares: Sequence[Middleware] = ()) -> None:
        self.app = app
        self.middlewares = tuple(middlewares)

    def sub(self, app: web.Application, middlewares: Sequence[Middleware] = ()) -> BoundRoutes:
        """The routes of a sub-application of this one: these middlewares, then its own."""
        return BoundRoutes(app, self.middlewares + tuple(middlewares))

    def bind(self, handler: Handler) -> Handler:
        for middleware in reversed(self.middlewares):
            handler = functools.partial(middleware, handler=handler)
        return handler

    def add_get(self, path: str, handler: Handler, *, bound: bool = True) -> web.AbstractResource:
        """GET and HEAD, as ``router.add_get``; ``bound=False`` leaves out the middlewares."""
        resource = self.app.router.add_resource(path)
        for method in ("HEAD", "GET"):
            resource.add_route(method, self.bind(handler) if bound else handler)
        return resource

    def add_post(self, path: str, handler: Handler) -> None:
        self.app.router.add_post(path, self.bind(handler))

    def add_catch_all(self, handler: Handler) -> None:
        """The last route: every path and method no other route took."""
        self.app.router.add_route("*", "/{path:.*}", self.bind(handler))


async def allowed_elsewhere(request: web.Request) -> set[str]:
    """The methods other routes of ``request.app`` take on this path (for 405's ``Allow``);
    empty when none has the path (404). For a catch-all route."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    return allowed
