"""The partner API at ``/api/v1/`` (docs/partners.md): a sub-application with its own
middlewares (CORS, problem details, keys and rate limits), bound to its routes
(:mod:`service.web.bound_routes`), so the public feed routes keep their middleware-free hot path."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from service.api.cursors import CursorSigner
from service.api.reads import Reader
from service.store.api_keys import ApiKeys
from service.store.availability import REDIS_DOWN
from service.web.api import cors, routes
from service.web.api.docs import render_docs
from service.web.api.key_guard import auth_middleware
from service.web.api.notifier import ChangeNotifier
from service.web.api.openapi import build_document
from service.web.api.problem_middleware import problems
from service.web.api.state import CURSOR_KEY, DOCS_PAGE, KEYS, NOTIFIER, READER, SPEC, CursorKey
from service.web.appkeys import REDIS, REDIS_LISTENER, STORE
from service.web.bound_routes import BoundRoutes, allowed_elsewhere

PREFIX = "/api/v1/"


def create_api_app(parent_routes: BoundRoutes) -> web.Application:
    """The sub-application to mount at :data:`PREFIX`; its resources come from the parent's."""
    parent = parent_routes.app
    api = web.Application()
    bound = parent_routes.sub(api, [cors.cors_middleware(PREFIX), problems, auth_middleware(PREFIX)])
    document = build_document(PREFIX.rstrip("/"))
    api[SPEC] = json.dumps(document, ensure_ascii=False, indent=1).encode()
    api[DOCS_PAGE] = render_docs(document)

    async def resources(api: web.Application) -> AsyncIterator[None]:
        redis = parent[REDIS]
        store = parent[STORE]
        api[KEYS] = ApiKeys(redis)
        api[READER] = Reader(store, CursorSigner(secrets.token_bytes(32)))  # see CursorKey
        api[CURSOR_KEY] = CursorKey(store.settings.api.cursor_secret)
        with contextlib.suppress(*REDIS_DOWN):  # the web server starts while Redis is away, too
            await api[CURSOR_KEY].load_into(api[READER], redis)
        api[NOTIFIER] = ChangeNotifier(parent[REDIS_LISTENER])  # XREAD BLOCK: no read timeout
        yield
        await api[NOTIFIER].stop()

    api.cleanup_ctx.append(resources)
    routes.add_routes(bound)
    bound.add_catch_all(_no_route)
    return api


async def _no_route(request: web.Request) -> web.StreamResponse:
    """After every route: OPTIONS without CORS gets 204; otherwise a 404 or 405 problem."""
    if request.method == "OPTIONS":
        return web.Response(status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
    allowed = await allowed_elsewhere(request)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
    raise web.HTTPNotFound()
