"""CORS for the partner API: a browser page may read answers when its origin is one of the
key's allowed origins (``tributary keys create --origin``).

A preflight carries no key, so it is answered for origins that some key allows; the answer to
the real request then carries ``Access-Control-Allow-Origin`` only if *that* key allows the
origin. The OpenAPI document is readable from anywhere.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.web.api.state import KEYS, REQUEST_KEY

EXPOSED = "ETag, Link, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy"
ALLOWED_HEADERS = "Authorization, If-None-Match, Last-Event-ID"
MAX_AGE = "600"


def cors_middleware(prefix: str) -> Any:
    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return await preflight(request, origin)
        response: web.StreamResponse = await handler(request)
        if not response.prepared:  # an event stream set its own before it started
            for name, value in allow_headers(request, prefix).items():
                if name == "Vary":
                    response.headers.add(name, value)
                else:
                    response.headers[name] = value
        return response

    return cors


def allow_headers(request: web.Request, prefix: str) -> dict[str, str]:
    """The CORS headers of an answer to ``request`` (none without an allowed ``Origin``)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return {}
    key = request.get(REQUEST_KEY)
    public = request.path == prefix + "openapi.json"
    if not public and (key is None or not key.allows_origin(origin)):
        return {}
    return {
        "Access-Control-Allow-Origin": "*" if public else origin,
        "Access-Control-Expose-Headers": EXPOSED,
        "Vary": "Origin",
    }


async def preflight(request: web.Request, origin: str) -> web.Response:
    headers = {"Vary": "Origin"}
    allowed = any(key.allows_origin(origin) for key in await request.app[KEYS].all())
    if allowed:
        headers |= {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": MAX_AGE,
        }
    return web.Response(status=204, headers=headers)
