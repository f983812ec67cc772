"""JSON answers of the API: serialised through the models, with a strong ETag (304 on a match),
``Link: rel="next"`` on paged ones, and no caching by shared caches (answers depend on the key)."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel

from service.web.api.state import RATE_HEADERS

JSON_TYPE = "application/json"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: web.Request, etag: str) -> bool:
    """If-None-Match (weak comparison, RFC 9110 13.1.2) against our one strong tag."""
    if request.headers.get("If-None-Match") is None:
        return False
    return any(tag.value in ("*", etag.strip('"')) for tag in request.if_none_match or ())


def ok(request: web.Request, model: BaseModel, *, next_query: dict[str, str] | None = None) -> web.Response:
    body = model.model_dump_json(exclude_none=False).encode()
    etag = etag_of(body)
    headers = {
        **request.get(RATE_HEADERS, {}),
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization, Origin",
    }
    if next_query is not None:
        headers["Link"] = f'<{request.url.with_query(None).path}?{urlencode(next_query)}>; rel="next"'
    if matches(request, etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=JSON_TYPE, charset="utf-8", headers=headers)
