"""The admin page at ``/admin`` (docs/operations.md#the-admin-page): a sub-application with its
own middleware (the key, the session, CSRF, no-store) bound to its routes
(:mod:`service.web.bound_routes`), mounted only when ``TRIBUTARY_ADMIN_KEY``
is set, so without it every ``/admin`` path is a plain 404 and the public routes carry nothing
of it."""

from __future__ import annotations

from aiohttp import web

from service.config import Settings
from service.web.admin import views
from service.web.bound_routes import BoundRoutes

PREFIX = "/admin"


def mount(routes: BoundRoutes, settings: Settings) -> None:
    """Mount ``/admin`` on the routes' application when an admin key is configured."""
    if settings.admin_key is None:
        return
    key = settings.admin_key.get_secret_value()
    admin = web.Application()
    admin[views.ADMIN_KEY] = key
    views.add_routes(routes.sub(admin, [views.guard(key)]))

    async def to_index(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(PREFIX + "/")

    routes.add_get(PREFIX, to_index)
    routes.app.add_subapp(PREFIX, admin)
