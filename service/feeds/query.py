"""What a reader asked of a merged feed: query parameters, paging cursor, and the filters.

Pure: a query string in, a validated :class:`FeedQuery` out (or :class:`QueryError`, which the
view answers with 400); an article and the filters in, a yes/no out. The normalised form of a
query keys the render cache and is the query string of the feed's self and next links, so two
spellings of one question share one cached rendering.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from service.config import FeedConfig, Settings
from service.errors import TributaryError
from service.feed_filter import searchable_text, word_pattern
from service.models import Article

MAX_LIMIT = 1000  # the largest page a reader may ask for (same bound as [[feeds]] limit)
MAX_VALUE_CHARS = 200  # longer values are refused, not truncated: a silently different answer is worse
_CURSOR_ID = re.compile(r"[0-9a-f]{32}")


class QueryError(TributaryError):
    """A query parameter a reader sent cannot be honoured; the message says which and why."""


@dataclass(frozen=True)
class Cursor:
    """A position in a feed's index: items strictly older than (score, id) come after it.

    ``score`` is the index score (the item's ``published`` as Unix seconds), ``id`` breaks ties
    exactly as Redis orders equal scores, so the order is total and stable while items arrive.
    """

    score: float
    id: str

    def encode(self) -> str:
        raw = f"{self.score!r}:{self.id}".encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            score_text, article_id = raw.split(":", 1)
            score = float(score_text)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise QueryError("cursor: not a cursor this server issued") from exc
        if not _CURSOR_ID.fullmatch(article_id) or score != score or score in (float("inf"), float("-inf")):
            raise QueryError("cursor: not a cursor this server issued")
        return cls(score, article_id)


@dataclass(frozen=True)
class FeedQuery:
    """Ad-hoc narrowing of one feed. Empty fields mean "no constraint"."""

    tags: tuple[str, ...] = ()  # lowercased; an item matches any of them
    sources: tuple[str, ...] = ()  # source ids; an item matches any of them
    q: str = ""  # lowercased, whitespace collapsed; every word must occur
    limit: int | None = None  # None: the feed's configured limit
    cursor: Cursor | None = None

    def page_size(self, feed: FeedConfig) -> int:
        return self.limit if self.limit is not None else feed.limit

    def params(self, *, cursor: Cursor | None = None) -> list[tuple[str, str]]:
        """The normalised parameters, in a fixed order; ``cursor`` replaces this query's own."""
        pairs = [("tag", t) for t in self.tags] + [("source", s) for s in self.sources]
        if self.q:
            pairs.append(("q", self.q))
        if self.limit is not None:
            pairs.append(("limit", str(self.limit)))
        position = cursor or self.cursor
        if position is not None:
            pairs.append(("cursor", position.encode()))
        return pairs

    def query_string(self, *, cursor: Cursor | None = None) -> str:
        params = self.params(cursor=cursor)
        return "?" + urlencode(params) if params else ""

    @property
    def key(self) -> str:
        """Cache key: the normalised query string ("" for the plain feed)."""
        return self.query_string()


def parse_query(params: Mapping[str, str] | list[tuple[str, str]], feed: FeedConfig) -> FeedQuery:
    """Validate and normalise the known parameters; unknown ones are ignored (not cached apart)."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in ("tag", "source", "q", "limit", "cursor"):
            if len(value) > MAX_VALUE_CHARS:
                raise QueryError(f"{name}: longer than {MAX_VALUE_CHARS} characters")
            values.setdefault(name, []).append(value)
    for single in ("q", "limit", "cursor"):
        if len(values.get(single, ())) > 1:
            raise QueryError(f"{single}: given more than once")
    if sum(len(v) for v in values.values()) > 20:
        raise QueryError("too many query parameters")
    limit = None
    if "limit" in values:
        text = values["limit"][0]
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:  # "²".isdigit() too
            raise QueryError(f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {text!r}")
        limit = int(text) if int(text) != feed.limit else None
    cursor = Cursor.decode(values["cursor"][0]) if values.get("cursor", [""])[0] else None
    return FeedQuery(
        tags=tuple(sorted({t.strip().lower() for t in values.get("tag", ()) if t.strip()})),
        sources=tuple(sorted({s.strip() for s in values.get("source", ()) if s.strip()})),
        q=" ".join(values.get("q", [""])[0].lower().split()),
        limit=limit,
        cursor=cursor,
    )


# -- filters ---------------------------------------------------------------------------------


def query_matches(query: FeedQuery, settings: Settings, article: Article) -> bool:
    """The reader's ad-hoc narrowing: ``?tag=``, ``?source=``, ``?q=``."""
    if query.sources and article.source_id not in query.sources:
        return False
    if query.tags:
        source = settings.source(article.source_id)
        tags = {t.lower() for t in article.tags} | {t.lower() for t in (source.tags if source else ())}
        if not tags.intersection(query.tags):
            return False
    if query.q:
        text = searchable_text(article)
        if not all(word_pattern(word).search(text) for word in query.q.split()):
            return False
    return True


def has_filters(feed: FeedConfig, query: FeedQuery) -> bool:
    return bool(
        feed.include_keywords
        or feed.exclude_keywords
        or feed.languages
        or feed.min_date
        or query.tags
        or query.sources
        or query.q
    )
