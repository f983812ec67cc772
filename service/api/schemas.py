"""The partner API's v1 models: what requests may ask and responses say (docs/partners.md).

These models are the truth: the handlers validate query strings with them and serialise
responses through them, and ``/api/v1/openapi.json`` is generated from their JSON schemas.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from service.config import SLUG
from service.models import Article, ArticleFlag, Revision, UtcDatetime
from service.store.changelog import ChangedPart, ChangeKind, RemovalReason

# -- the v1 contract's limits: documented, and never lowered within v1 ----------------------

MAX_LIMIT = 500  # items per page of /articles and records per page of /changes
DEFAULT_LIMIT = 100
MAX_IDS = 500  # ids one /articles?ids= request may name
MAX_WAIT_SECONDS = 30  # long-poll of /changes
MAX_SCAN = 5000  # index entries (or log entries) one page may examine before handing out a cursor
MAX_PARAM_CHARS = 200  # any other parameter value
MAX_CURSOR_CHARS = 400


def _ascii_digits(value: object) -> object:
    """Integers in a query string are ASCII digits only: pydantic alone would also take "+5",
    " 5", "1_0" and "5.0", and ``str.isdigit`` takes "²" (which ``int`` then refuses)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("expected a whole number written in ASCII digits")
    return value


QueryInt = Annotated[int, BeforeValidator(_ascii_digits)]
ArticleId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="an article id (32 hex digits)")]
Slug = Annotated[str, Field(pattern=SLUG, max_length=64)]


class Query(BaseModel):
    """Base of the query-string models: unknown parameters are refused, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ArticlesQuery(Query):
    feed: Slug | None = Field(None, description="articles of this merged feed (as the feed shows them)")
    source: Slug | None = Field(None, description="articles this source carried (its own and merged copies)")
    tag: str | None = Field(None, min_length=1, max_length=MAX_PARAM_CHARS, description="article or source tag")
    q: str | None = Field(
        None, min_length=1, max_length=MAX_PARAM_CHARS, description="words that must all occur in title or summary"
    )
    language: str | None = Field(
        None, pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$", description="language tag; en matches en-GB too"
    )
    published_after: AwareDatetime | None = Field(None, description="published strictly after (RFC 3339)")
    published_before: AwareDatetime | None = Field(None, description="published strictly before (RFC 3339)")
    updated_after: AwareDatetime | None = Field(None, description="updated strictly after (RFC 3339)")
    ids: str | None = Field(
        None,
        max_length=MAX_IDS * 33,
        pattern=r"^[0-9a-f]{32}(,[0-9a-f]{32})*$",
        description=f"comma-separated article ids, at most {MAX_IDS}; not combined with other filters or paging",
    )
    limit: QueryInt = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"items per page, at most {MAX_LIMIT}")
    cursor: str | None = Field(
        None, min_length=1, max_length=MAX_CURSOR_CHARS, description="the next_cursor of the previous page"
    )


class ChangesQuery(Query):
    cursor: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CURSOR_CHARS,
        description="where to continue: a changes_cursor of a list response, or the next_cursor of the previous "
        "page; without one, from the oldest record kept",
    )
    feed: Slug | None = Field(
        None, description="only changes of this merged feed (entering it is created, leaving it removed)"
    )
    limit: QueryInt = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"records per page, at most {MAX_LIMIT}")
    wait: QueryInt = Field(
        0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description=f"seconds to wait for a record when there is none (long-poll), at most {MAX_WAIT_SECONDS}",
    )


class StreamQuery(Query):
    cursor: str | None = Field(
        None, min_length=1, max_length=MAX_CURSOR_CHARS, description="where to start; Last-Event-ID wins over it"
    )
    feed: Slug | None = Field(None, description="only changes of this merged feed")


class NoQuery(Query):
    """Endpoints that take no query parameters."""


# -- responses --------------------------------------------------------------------------------


class ApiArticle(Article):
    """A stored article (docs/article-schema.md) and the merged feeds showing it now."""

    flags: tuple[ArticleFlag, ...] = ()  # type: ignore[assignment]  # sorted: the same bytes in every process
    feeds: tuple[str, ...] = Field((), description="merged feeds that show the article (their filters applied)")

    @classmethod
    def of(cls, article: Article, feeds: tuple[str, ...]) -> ApiArticle:
        data = article.model_dump()
        data["flags"] = tuple(sorted(article.flags))
        return cls(**data, feeds=feeds)


class ArticleDetail(ApiArticle):
    revisions: tuple[Revision, ...] = Field((), description="previous versions, newest first")


class ArticlePage(BaseModel):
    items: list[ApiArticle]
    next_cursor: str | None = Field(None, description="pass as cursor= for the next page; null on the last page")
    changes_cursor: str = Field(
        description="the change-log position this listing reflects: follow /changes?cursor= from here (use the "
        "first page's: every page of one walk carries it)"
    )


class FeedInfo(BaseModel):
    name: str
    title: str
    description: str
    sources: list[str] = Field(description="ids of the sources merged into the feed")
    include_keywords: list[str]
    exclude_keywords: list[str]
    languages: list[str]
    min_date: str | None
    definition: str = Field(description="changes when the feed's sources or filters change: then re-snapshot")
    urls: dict[str, str] = Field(description="the public feed in each format")


class FeedList(BaseModel):
    feeds: list[FeedInfo]
    changes_cursor: str


class SourceStatus(BaseModel):
    """What the public may know about a source: no error messages, no internal addresses."""

    id: str
    name: str
    url: str
    kind: Literal["feed", "page"]
    tags: list[str]
    feeds: list[str]
    articles: int = Field(description="articles the source carries now")
    last_poll: UtcDatetime | None
    last_success: UtcDatetime | None
    next_poll: UtcDatetime | None
    healthy: bool = Field(description="the last poll succeeded")
    last_error_kind: str | None
    consecutive_failures: int
    disabled: bool


class SourceList(BaseModel):
    sources: list[SourceStatus]
    changes_cursor: str


class ChangeRecord(BaseModel):
    """One committed change of one article, as the caller's view (key scope, ``feed``) sees it."""

    cursor: str = Field(description="resume right after this record (also the SSE event id)")
    kind: ChangeKind
    id: ArticleId
    at: UtcDatetime = Field(description="when the change was committed")
    reason: RemovalReason | None = Field(None, description="why it was removed (kind removed only)")
    merged_into: str | None = Field(None, description="the article it was merged into (reason merged)")
    changed: ChangedPart | None = Field(None, description="what an update changed")
    content_hash: str | None = Field(None, description="content hash the change committed (created, updated)")
    article: ApiArticle | None = Field(
        None, description="the article as it is now (created, updated); null if a later record removed it"
    )


class ChangePage(BaseModel):
    changes: list[ChangeRecord]
    next_cursor: str = Field(description="pass as cursor= for the next page (also when this one was empty)")
    more: bool = Field(description="more records are waiting: ask again at once")
    retention_seconds: int = Field(description="how long records are kept; an older cursor gets 410")


class Problem(BaseModel):
    """RFC 9457 problem details; ``type`` is stable, listed at /api/v1/docs#problems."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    parameter: str | None = Field(None, description="the query parameter at fault")
    limit: int | None = Field(None, description="the limit that was exceeded")
    errors: list[dict[str, str]] | None = Field(None, description="every parameter at fault, with the reason")
