"""Bearer keys and the per-key token bucket, as one middleware.

Every endpoint but the OpenAPI document, the docs page and CORS preflights needs a key
(``Authorization: Bearer <key>``). Each request takes one token from the key's bucket in Redis,
shared by every web process; an empty bucket is a 429 with ``Retry-After``. Every answer to a
keyed request carries ``RateLimit-Limit``/``-Remaining``/``-Reset`` and ``RateLimit-Policy``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.api.problems import ApiProblem
from service.store import ratelimit
from service.web.api.state import CURSOR_KEY, KEYS, RATE_HEADERS, READER, REQUEST_KEY
from service.web.appkeys import SETTINGS

PUBLIC = frozenset({"openapi.json", "docs"})
CHALLENGE = 'Bearer realm="tributary"'


def is_public(request: web.Request, prefix: str) -> bool:
    return request.method == "OPTIONS" or request.path.removeprefix(prefix).strip("/") in PUBLIC


def auth_middleware(prefix: str) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if is_public(request, prefix):
            response: web.StreamResponse = await handler(request)
            return response
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiProblem(
                "unauthorized",
                "send the API key as Authorization: Bearer <key>",
                headers={"WWW-Authenticate": CHALLENGE},
            )
        key = await request.app[KEYS].authenticate(token.strip())
        if key is None:
            raise ApiProblem(
                "unauthorized",
                "unknown or revoked API key",
                headers={"WWW-Authenticate": CHALLENGE + ', error="invalid_token"'},
            )
        request[REQUEST_KEY] = key
        await request.app[CURSOR_KEY].load_into(request.app[READER], request.app[KEYS].redis)
        settings = request.config_dict[SETTINGS]
        per_minute = key.rate_per_minute or settings.api.rate_per_minute
        decision = await ratelimit.take(request.app[KEYS].redis, key.name, per_minute, settings.api.burst)
        request[RATE_HEADERS] = {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset_seconds),
            "RateLimit-Policy": f"{decision.limit};w={decision.window_seconds}",
        }
        if not decision.allowed:
            raise ApiProblem(
                "rate-limited",
                f"this key may make {per_minute} requests per minute; retry in {decision.retry_after_seconds}s",
                headers={"Retry-After": str(decision.retry_after_seconds)},
                limit=decision.limit,
            )
        return await handler(request)  # type: ignore[no-any-return]

    return auth
