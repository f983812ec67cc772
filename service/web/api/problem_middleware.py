"""RFC 9457 answers for every error the API gives, and the middleware that guarantees it:
whatever a handler raises leaves as ``application/problem+json`` with a stable ``type``, and a
bug is logged with its traceback, never sent."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from service.api.cursors import CursorError
from service.api.problems import ApiProblem
from service.logs import bind_request
from service.web.api.state import RATE_HEADERS
from service.web.appkeys import OUTAGE
from service.web.feed_views import RETRY_AFTER_SECONDS

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


def problem_response(request: web.Request, problem: ApiProblem) -> web.Response:
    body = json.dumps(problem.body(request.path), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {**request.get(RATE_HEADERS, {}), **problem.headers, "Cache-Control": "no-store"}
    return web.Response(
        body=body, status=problem.type.status, content_type=PROBLEM_TYPE, charset="utf-8", headers=headers
    )


def from_http(exc: web.HTTPException) -> ApiProblem:
    if exc.status == 405:
        return ApiProblem("method-not-allowed", f"{exc.reason}", headers={"Allow": exc.headers.get("Allow", "GET")})
    if exc.status == 404:
        return ApiProblem("not-found", "no such endpoint: see /api/v1/docs")
    slug = "invalid-parameter" if exc.status < 500 else "internal"
    return ApiProblem(slug, exc.text or exc.reason)


@web.middleware
async def problems(request: web.Request, handler: Any) -> web.StreamResponse:
    bind_request(request)
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiProblem as problem:
        return problem_response(request, problem)
    except CursorError as exc:
        return problem_response(request, ApiProblem("invalid-cursor", f"cursor: {exc}", parameter="cursor"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(request, from_http(exc))
    except (RedisError, OSError) as exc:
        request.config_dict[OUTAGE].failed(exc)  # one line per outage, not one per request
        return problem_response(
            request,
            ApiProblem(
                "unavailable",
                "the store cannot be reached; try again shortly",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ),
        )
    except Exception:
        log.exception("partner API: unhandled error serving %s %s", request.method, request.path)
        return problem_response(request, ApiProblem("internal", "internal error (logged)"))
