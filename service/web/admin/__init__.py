"""The admin page at ``/admin`` (docs/operations.md#the-admin-page): a sub-application with its
own middleware (the key, the session, CSRF, no-store), mounted only when ``TRIBUTARY_ADMIN_KEY``
is set, so without it every ``/admin`` path is a plain 404 and the public routes carry nothing
of it."""

from __future__ import annotations

from aiohttp import web

from service.config import Settings
from service.web.admin import views

PREFIX = "/admin"


def mount(app: web.Application, settings: Settings) -> None:
    """Mount ``/admin`` on ``app`` when an admin key is configured."""
    if settings.admin_key is None:
        return
    key = settings.admin_key.get_secret_value()
    admin = web.Application(middlewares=[views.guard(key)])
    admin[views.ADMIN_KEY] = key
    views.add_routes(admin)

    async def to_index(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(PREFIX + "/")

    app.router.add_get(PREFIX, to_index)
    app.add_subapp(PREFIX, admin)
