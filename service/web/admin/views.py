"""The admin handlers: read through service/store (the one owner of each fact), steer sources
through the same classes the CLI uses, queue work by job name."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from service import jobs
from service.config import SLUG, SourceConfig
from service.store.articles import Store
from service.store.dead_letters import DeadLetters, NotRetryable
from service.store.overview import SourceRow, overview, source_rows
from service.store.source_registry import SourceRegistry
from service.store.worker_counters import activity
from service.web.admin import access, pages
from service.web.appkeys import CLOCK, LIVE, REDIS
from service.web.bound_routes import BoundRoutes, allowed_elsewhere

log = logging.getLogger(__name__)

ADMIN_KEY = web.AppKey("admin_key", str)
NONCE = web.RequestKey("admin_nonce", str)
CSRF = web.RequestKey("admin_csrf", str)
MAX_FORM_BYTES = 16 * 1024
MAX_URL_CHARS = 2048
ADD_JOB = "add-source:"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def guard(admin_key: str) -> Any:
    """Bearer key or session cookie on every admin route but the login form; CSRF on every POST
    of a session; security headers on every answer."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await _guarded(request, handler, admin_key)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    return middleware


async def _guarded(request: web.Request, handler: Any, admin_key: str) -> web.StreamResponse:
    request[CSRF] = ""
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, request.content_length)
    if request.path.rstrip("/") != "/admin/login":
        _authenticate(request, admin_key)
        if NONCE in request:
            request[CSRF] = access.csrf_token(admin_key, request[NONCE])
            if request.method == "POST":
                form = await request.post()
                given = form.get("csrf")
                if not access.csrf_ok(given if isinstance(given, str) else None, admin_key, request[NONCE]):
                    raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page and try again")
    response: web.StreamResponse = await handler(request)
    return response


def _authenticate(request: web.Request, admin_key: str) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        if not access.key_matches(token.strip(), admin_key):
            raise web.HTTPUnauthorized(text="wrong admin key", headers={"WWW-Authenticate": 'Bearer realm="admin"'})
        return  # a browser never sends this header by itself: no CSRF token needed
    nonce = access.session_nonce(request.cookies.get(access.COOKIE), admin_key, request.config_dict[CLOCK]())
    if nonce is None:
        if request.method in ("GET", "HEAD"):
            raise web.HTTPSeeOther("/admin/login")
        raise web.HTTPUnauthorized(text="log in first", headers={"WWW-Authenticate": 'Bearer realm="admin"'})
    request[NONCE] = nonce


def html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def back(path: str, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?{urlencode({'done': done})}")


def admin_key(request: web.Request) -> str:
    return request.app[ADMIN_KEY]


# -- logging in and out ------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.Response:
    return html(pages.login_page())


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    given = form.get("key")
    key = admin_key(request)
    if not isinstance(given, str) or not access.key_matches(given, key):
        log.warning("admin: failed login from %s", request.remote)
        return html(pages.login_page("That is not the admin key."), status=401)
    response = web.Response(status=303, headers={"Location": "/admin/"})
    response.set_cookie(
        access.COOKIE,
        access.issue_session(key, request.config_dict[CLOCK]()),
        max_age=access.SESSION_SECONDS,
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=request.config_dict[LIVE].current.server.base_url.startswith("https://"),
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/admin/login"})
    response.del_cookie(access.COOKIE, path="/admin")
    return response


# -- pages -------------------------------------------------------------------------------------


async def _rows(request: web.Request) -> list[SourceRow]:
    live = request.config_dict[LIVE]
    await live.refresh()
    return await source_rows(request.config_dict[REDIS], live.current.sources, request.config_dict[CLOCK]())


async def index(request: web.Request) -> web.Response:
    redis, now = request.config_dict[REDIS], request.config_dict[CLOCK]()
    view = await overview(redis, await _rows(request), now)
    page = pages.overview_page(view, await activity(redis, now), csrf=request[CSRF], flash=request.query.get("done"))
    return html(page)


async def sources(request: web.Request) -> web.Response:
    query = request.query
    sort = query.get("sort", "id")
    chosen = pages.select_rows(
        await _rows(request),
        health=query.get("health", ""),
        q=query.get("q", "")[:200],
        sort=sort,
        desc=bool(query.get("desc")),
    )
    page = pages.sources_page(
        chosen,
        request.config_dict[CLOCK](),
        health=query.get("health", ""),
        q=query.get("q", "")[:200],
        sort=sort,
        desc=bool(query.get("desc")),
        csrf=request[CSRF],
        flash=query.get("done"),
    )
    return html(page)


async def _row(request: web.Request) -> SourceRow:
    source_id = request.match_info["source_id"]
    live = request.config_dict[LIVE]
    await live.refresh()
    config = live.current.source(source_id)
    if config is None:
        raise web.HTTPNotFound(text=f"no source {source_id!r}")
    [row] = await source_rows(request.config_dict[REDIS], [config], request.config_dict[CLOCK]())
    return row


async def source(request: web.Request) -> web.Response:
    row = await _row(request)
    polls = await Store(request.config_dict[REDIS], request.config_dict[LIVE].current).sources.history(row.id)
    now = request.config_dict[CLOCK]()
    return html(pages.source_page(row, polls, now, csrf=request[CSRF], flash=request.query.get("done")))


async def dead(request: web.Request) -> web.Response:
    letters = await DeadLetters(request.config_dict[REDIS]).list(200)
    now = request.config_dict[CLOCK]()
    return html(pages.dead_page(letters, now, csrf=request[CSRF], flash=request.query.get("done")))


async def new_source(request: web.Request) -> web.Response:
    return html(pages.new_source_page(csrf=request[CSRF]))


async def job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    if not job_id.startswith(ADD_JOB):
        raise web.HTTPNotFound()
    status, outcome = await jobs.job_outcome(request.config_dict[REDIS], job_id)
    return html(pages.job_page(job_id, status, outcome, csrf=request[CSRF]))


# -- actions -----------------------------------------------------------------------------------


async def source_action(request: web.Request) -> web.StreamResponse:
    row = await _row(request)
    action = request.match_info["action"]
    redis, now = request.config_dict[REDIS], request.config_dict[CLOCK]()
    store = Store(redis, request.config_dict[LIVE].current)
    path = f"/admin/sources/{row.id}"
    match action:
        case "poll":
            await jobs.enqueue(redis, "poll", row.id, None, job_id=f"poll-now:{row.id}:{uuid.uuid4().hex}")
            raise back(path, "poll queued: the page shows it once a worker has run it")
        case "pause":
            await store.sources.pause(row.id)
            raise back(path, "paused")
        case "resume":
            await store.sources.resume(row.id, now)
            raise back(path, "resumed: due now")
        case "enable":
            was = await store.sources.enable(row.id, now)
            raise back(path, f"re-enabled (was: {was})" if was else "was not disabled")
        case "remove":
            form = await request.post()
            removed = await store.remove_source_articles(row.id, now) if form.get("purge") == "1" else None
            await SourceRegistry(redis).remove(row.id)
            await request.config_dict[LIVE].refresh()
            done = f"removed {row.id}" + (
                f" and {removed} article(s)" if removed is not None else "; its articles stay"
            )
            raise back("/admin/sources", done)
    raise web.HTTPNotFound()


async def add_source(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    url = str(form.get("url", "")).strip()
    source_id = str(form.get("id", "")).strip() or None
    tags = [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()]
    interval_text = str(form.get("interval", "")).strip()
    try:
        if len(url) > MAX_URL_CHARS:
            raise ValueError("the URL is too long")
        if source_id is not None and (not re.match(SLUG, source_id) or len(source_id) > 64):
            raise ValueError("an id is lower-case letters, digits and dashes")
        interval = int(interval_text) if interval_text else None
        # The same checks as a [[sources]] table, on what was typed (the feed found may differ).
        SourceConfig(id=source_id or "new", url=url, tags=tags, interval_seconds=interval or 600)
    except (ValueError, ValidationError) as exc:
        message = "; ".join(str(err["msg"]) for err in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
        return html(pages.new_source_page(csrf=request[CSRF], error=message), status=400)
    job_id = ADD_JOB + uuid.uuid4().hex
    await jobs.enqueue(request.config_dict[REDIS], "add_source", url, source_id, tags, interval, job_id=job_id)
    raise web.HTTPSeeOther(f"/admin/jobs/{job_id}")


async def dead_action(request: web.Request) -> web.StreamResponse:
    letter_id, action = request.match_info["letter_id"], request.match_info["action"]
    letters = DeadLetters(request.config_dict[REDIS])
    if action == "retry":
        try:
            letter = await letters.retry(letter_id)
        except NotRetryable as exc:
            raise back("/admin/dead", f"{letter_id}: {exc}") from exc
        if letter is None:
            raise web.HTTPNotFound(text=f"no dead letter {letter_id!r}")
        raise back("/admin/dead", f"queued again: {letter.summary}")
    if action == "purge":
        if not await letters.purge(letter_id):
            raise web.HTTPNotFound(text=f"no dead letter {letter_id!r}")
        raise back("/admin/dead", f"purged {letter_id}")
    raise web.HTTPNotFound()


def add_routes(routes: BoundRoutes) -> None:
    routes.add_get("/login", login_form)
    routes.add_post("/login", login)
    routes.add_post("/logout", logout)
    routes.add_get("/", index)
    routes.add_get("/sources", sources)
    routes.add_get("/sources/new", new_source)
    routes.add_post("/sources/add", add_source)
    routes.add_get("/jobs/{job_id}", job)
    routes.add_get("/sources/{source_id}", source)
    routes.add_post("/sources/{source_id}/{action:poll|pause|resume|enable|remove}", source_action)
    routes.add_get("/dead", dead)
    routes.add_post("/dead/{letter_id}/{action:retry|purge}", dead_action)
    routes.add_catch_all(no_route)


async def no_route(request: web.Request) -> web.StreamResponse:
    """After every route (behind the guard, as every admin path): 405 with ``Allow``, or 404."""
    allowed = await allowed_elsewhere(request)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
    raise web.HTTPNotFound()
