"""The partner API's endpoints: one table that both registers the handlers and, with the
models, generates the OpenAPI document (service/web/api/openapi.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from service.api.problems import bad_parameter
from service.api.schemas import (
    ArticleDetail,
    ArticlePage,
    ArticlesQuery,
    ChangePage,
    ChangesQuery,
    FeedInfo,
    FeedList,
    NoQuery,
    Query,
    SourceList,
    SourceStatus,
    StreamQuery,
)
from service.store.api_keys import ApiKey
from service.web.api import sse
from service.web.api.http import ok
from service.web.api.params import parse
from service.web.api.state import DOCS_PAGE, NOTIFIER, READER, REQUEST_KEY, SPEC
from service.web.bound_routes import BoundRoutes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ARTICLE_ID = re.compile(r"[0-9a-f]{32}")
SLUG_SCHEMA = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": 64}


@dataclass(frozen=True)
class Operation:
    path: str  # below /api/v1
    operation_id: str
    summary: str
    handler: Handler
    response: type[BaseModel] | None
    query: type[Query] = NoQuery
    description: str = ""
    path_params: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    header_params: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    problems: tuple[int, ...] = (400, 401, 429)
    media_type: str = "application/json"
    paged: bool = False
    public: bool = False
    conditional: bool = True  # answers ETag / 304


def _scope(request: web.Request) -> tuple[str, ...]:
    key: ApiKey = request[REQUEST_KEY]
    return key.feeds


# -- handlers ----------------------------------------------------------------------------------


async def list_articles(request: web.Request) -> web.StreamResponse:
    query = parse(request, ArticlesQuery)
    page = await request.app[READER].articles(query, _scope(request))
    next_query = None
    if page.next_cursor is not None:
        next_query = {k: str(v) for k, v in request.query.items() if k != "cursor"} | {"cursor": page.next_cursor}
    return ok(request, page, next_query=next_query)


async def get_article(request: web.Request) -> web.StreamResponse:
    parse(request, NoQuery)
    article_id = request.match_info["id"]
    if not _ARTICLE_ID.fullmatch(article_id):
        raise bad_parameter("id", "an article id is 32 hex digits")
    return ok(request, await request.app[READER].article(article_id, _scope(request)))


async def list_feeds(request: web.Request) -> web.StreamResponse:
    parse(request, NoQuery)
    reader = request.app[READER]
    head = await reader.log.head()
    return ok(request, FeedList(feeds=reader.feed_infos(_scope(request)), changes_cursor=reader.signer.changes(head)))


async def get_feed(request: web.Request) -> web.StreamResponse:
    parse(request, NoQuery)
    return ok(request, request.app[READER].feed_info(request.match_info["name"], _scope(request)))


async def list_sources(request: web.Request) -> web.StreamResponse:
    parse(request, NoQuery)
    reader = request.app[READER]
    head = await reader.log.head()
    sources = await reader.sources(_scope(request))
    return ok(request, SourceList(sources=sources, changes_cursor=reader.signer.changes(head)))


async def get_source(request: web.Request) -> web.StreamResponse:
    parse(request, NoQuery)
    return ok(request, await request.app[READER].source(request.match_info["id"], _scope(request)))


async def changes(request: web.Request) -> web.StreamResponse:
    query = parse(request, ChangesQuery)
    reader = request.app[READER]
    view = reader.view(_scope(request), query.feed)
    read = await reader.changes(await reader.start_of_log(query.cursor), view, query.limit)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + query.wait
    while not read.page.changes and not read.page.more and loop.time() < deadline:
        if await request.app[NOTIFIER].wait_beyond(read.last, deadline - loop.time()):
            read = await reader.changes(read.last, view, query.limit)
    next_query = {k: str(v) for k, v in request.query.items() if k != "cursor"} | {"cursor": read.page.next_cursor}
    return ok(request, read.page, next_query=next_query)


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[SPEC], content_type="application/json", charset="utf-8")


async def docs(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[DOCS_PAGE], content_type="text/html", charset="utf-8")


_FEED_NAME = {"name": (SLUG_SCHEMA, "the merged feed's name")}
_SOURCE_ID = {"id": (SLUG_SCHEMA, "the source's id")}
_ARTICLE = {"id": ({"type": "string", "pattern": "^[0-9a-f]{32}$"}, "the article's id")}

OPERATIONS = (
    Operation(
        "/articles",
        "listArticles",
        "Articles, newest first",
        list_articles,
        ArticlePage,
        ArticlesQuery,
        description="Ordered by published time, newest first, then id descending: a total order that stays stable "
        "while articles arrive. Pages are keyset cursors bound to the query. A page may hold fewer than `limit` "
        "items and still have a `next_cursor` (at most 5000 index entries are examined per request). "
        "`changes_cursor` is the change-log position the listing reflects: a mirror takes the first page's and "
        "follows /changes from it.",
        problems=(400, 401, 403, 429),
        paged=True,
    ),
    Operation(
        "/articles/{id}",
        "getArticle",
        "One article, with provenance and kept revisions",
        get_article,
        ArticleDetail,
        path_params=_ARTICLE,
        problems=(400, 401, 404, 429),
    ),
    Operation("/feeds", "listFeeds", "The merged feeds this key may read", list_feeds, FeedList),
    Operation(
        "/feeds/{name}",
        "getFeed",
        "One merged feed",
        get_feed,
        FeedInfo,
        path_params=_FEED_NAME,
        problems=(400, 401, 404, 429),
    ),
    Operation("/sources", "listSources", "Sources and their public status", list_sources, SourceList),
    Operation(
        "/sources/{id}",
        "getSource",
        "One source's public status",
        get_source,
        SourceStatus,
        path_params=_SOURCE_ID,
        problems=(400, 401, 404, 429),
    ),
    Operation(
        "/changes",
        "listChanges",
        "The change log: every creation, content update and removal, in commit order",
        changes,
        ChangePage,
        ChangesQuery,
        description="Each committed change appears exactly once, in commit order, also while ingest runs. "
        "Follow next_cursor until `more` is false, then poll (or pass wait= to long-poll). A cursor older than "
        "the log's retention gets 410: take a new snapshot.",
        problems=(400, 401, 403, 410, 429),
        paged=True,
    ),
    Operation(
        "/stream",
        "streamChanges",
        "The change log as Server-Sent Events",
        sse.stream,
        None,
        StreamQuery,
        description="Events `change` carry a ChangeRecord as data; their id is its cursor. Reconnect with "
        "Last-Event-ID to resume.",
        header_params={"Last-Event-ID": ({"type": "string", "maxLength": 400}, "resume after this event id")},
        problems=(400, 401, 403, 410, 429),
        media_type="text/event-stream",
        conditional=False,
    ),
    Operation(
        "/openapi.json", "getOpenApi", "This document", openapi, None, public=True, problems=(), conditional=False
    ),
    Operation(
        "/docs",
        "getDocs",
        "Human-readable documentation",
        docs,
        None,
        public=True,
        problems=(),
        media_type="text/html",
        conditional=False,
    ),
)


def add_routes(routes: BoundRoutes) -> None:
    for operation in OPERATIONS:
        routes.add_get(operation.path, operation.handler)
