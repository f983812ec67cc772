"""The one article schema every source is normalised into, and the per-source state.

Every timestamp is timezone-aware UTC: naive datetimes are rejected and aware ones are
converted, so nothing downstream (store scores, renderers, the API) ever has to guess.

`Article` fields:

- ``id``: stable, ``sha256(source_id + "\\0" + identity)[:32]`` where identity is the entry
  guid, else its link, else title + date (see ``workers.normalise.entry.article_id``). Never changes
  for the same entry, so readers never see an item twice or "new" again.
- ``source_id`` / ``guid`` / ``url``: where it came from; ``url`` is absolute.
- ``title``: plain text, entities decoded, whitespace folded. ``summary`` / ``content``:
  sanitised HTML with absolute links. ``summary_text``: plain text of the summary (else the
  content), at most ~280 characters cut on a word boundary, for JSON consumers.
- ``url``: the canonical URL (tracking parameters stripped, see ``workers.normalise.canonical``).
- ``published`` / ``updated``: from the source when it gives them (converted to UTC), else
  the first-seen time; ``updated >= published`` always holds.
- ``first_seen``: when Tributary first stored the article.
- ``content_hash``: hash of what a reader sees (title, url, summary, content, authors, tags,
  image, enclosures). Dates are left out so a re-poll that only reorders items or restamps
  them is not a revision.
- ``sources``: provenance, one :class:`SourceRef` per source that carried the article (the
  first is the source that owns it; others are merged in by canonical URL or fuzzy title).
- ``flags``: facts about how fields were derived, e.g. ``published_missing``, ``date_clamped``
  (a date more than a day ahead was replaced by the first-seen time), ``truncated``.
- ``truncated``: names of the fields cut to ``[limits]`` at ingest (``title``, ``summary``,
  ``content``, ``authors``, ``tags``, ``enclosures``, ``image``, ``url``, ``guid``,
  ``language``), sorted; empty when nothing was cut. Bookkeeping, outside the content hash.

Full reference: docs/article-schema.md.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.errors import ErrorKind, stored_kind


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Author(Frozen):
    name: str | None = None
    email: str | None = None
    url: str | None = None


class Image(Frozen):
    url: str
    caption: str | None = None
    credit: str | None = None


class Enclosure(Frozen):
    url: str
    type: str | None = None
    length: int | None = Field(default=None, ge=0)


class SourceRef(Frozen):
    """Provenance: one source that carried this article."""

    id: str
    name: str
    link: str | None = None
    """The source's own (feed) URL."""
    first_seen: UtcDatetime
    url: str | None = None
    """The article's link as this source carried it (before canonicalisation)."""


class ArticleFlag(StrEnum):
    PUBLISHED_MISSING = "published_missing"
    UPDATED_MISSING = "updated_missing"
    DATE_CLAMPED = "date_clamped"
    TRUNCATED = "truncated"  # a field was cut to [limits]; ``Article.truncated`` names which


def _in_order(flags: frozenset[ArticleFlag]) -> list[ArticleFlag]:
    return sorted(flags)


Flags = Annotated[frozenset[ArticleFlag], PlainSerializer(_in_order, return_type=list[ArticleFlag], when_used="json")]
"""A set, written sorted: a set's order follows string hashing, which differs from one process to
the next, and a stored or served article must be the same bytes whichever process wrote it."""


class Article(Frozen):
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    source_id: str
    guid: str | None = None
    url: str | None = None
    title: str
    summary: str | None = None
    summary_text: str | None = None
    content: str | None = None
    authors: tuple[Author, ...] = ()
    tags: tuple[str, ...] = ()
    image: Image | None = None
    enclosures: tuple[Enclosure, ...] = ()
    language: str | None = None
    published: UtcDatetime
    updated: UtcDatetime
    first_seen: UtcDatetime
    content_hash: str = ""
    sources: tuple[SourceRef, ...] = ()
    flags: Flags = frozenset()
    truncated: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Article:
        if self.updated < self.published:
            object.__setattr__(self, "updated", self.published)
        if not self.content_hash:
            object.__setattr__(self, "content_hash", compute_content_hash(self))
        return self


def compute_content_hash(article: Article) -> str:
    """Hash of what a reader sees; dates and bookkeeping are deliberately excluded.

    The JSON hashed is ``json.dumps(article.model_dump(mode="json", include=...), sort_keys=True)``
    of those fields, written out by hand (keys in sorted order, json's own string escaping) because
    the dump, and json's encoder, cost more than the rest of the hash (tests check they agree).
    """
    image = article.image
    authors = ", ".join(
        f'{{"email": {_json(a.email)}, "name": {_json(a.name)}, "url": {_json(a.url)}}}' for a in article.authors
    )
    enclosures = ", ".join(
        f'{{"length": {"null" if e.length is None else int.__repr__(e.length)}, '
        f'"type": {_json(e.type)}, "url": {_json(e.url)}}}'
        for e in article.enclosures
    )
    shown = (
        "null"
        if image is None
        else f'{{"caption": {_json(image.caption)}, "credit": {_json(image.credit)}, "url": {_json(image.url)}}}'
    )
    tags = ", ".join(_json(tag) for tag in article.tags)
    blob = (
        f'{{"authors": [{authors}], "content": {_json(article.content)}, "enclosures": [{enclosures}], '
        f'"image": {shown}, "summary": {_json(article.summary)}, "tags": [{tags}], '
        f'"title": {_json(article.title)}, "url": {_json(article.url)}}}'
    )
    return hashlib.sha256(blob.encode()).hexdigest()  # ASCII escapes: lone surrogates cannot break it


def _json(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


class UpsertOutcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    MERGED = "merged"  # another source's copy of a stored article: provenance added


class Revision(Frozen):
    """A previous version of an article, kept when its content hash changed."""

    content_hash: str
    title: str
    summary: str | None = None
    content: str | None = None
    updated: UtcDatetime
    replaced_at: UtcDatetime


class SourceState(BaseModel):
    """What the store remembers about polling one source."""

    model_config = ConfigDict(extra="ignore")

    etag: str | None = None
    last_modified: str | None = None
    last_poll: UtcDatetime | None = None
    last_success: UtcDatetime | None = None
    last_status: int | None = None
    """Before ``last_error_kind``, whose reading of an old kind needs it (:meth:`_read_old_kind`)."""
    last_error: str | None = None
    last_error_kind: ErrorKind | None = None
    last_error_at: UtcDatetime | None = None
    consecutive_failures: int = 0
    next_poll: UtcDatetime | None = None
    articles_total: int = 0
    # Publisher-facing behaviour (workers/poll/pipeline.py, docs/publishers.md).
    disabled: bool = False
    disabled_reason: str | None = None
    paused: bool = False
    """An operator paused it (``tributary sources pause``): off the schedule until resumed."""
    disabled_at: UtcDatetime | None = None
    current_url: str | None = None
    """Where the feed lives after a permanent redirect (301/308); the config URL stays the key."""
    redirects: list[RedirectRecord] = Field(default_factory=list)
    """The newest permanent moves, oldest first (capped)."""
    failing_since: UtcDatetime | None = None
    last_unconditional: UtcDatetime | None = None
    next_poll_reason: str | None = None
    publisher_interval_seconds: int | None = None
    """The interval the feed body asked for (RSS ``<ttl>``, ``sy:updatePeriod``), kept for 304s."""
    recent_published: list[float] = Field(default_factory=list)
    """Unix times of the newest items, for the adaptive interval."""
    push: PushSubscription | None = Field(default=None, exclude=True)
    """The WebSub subscription to the feed's hub, if it names one. Stored under its own key by
    :mod:`service.store.push_state`, never with the rest of the state (see there why): left out
    of every dump (an ``exclude`` argument per dump cost the 304 poll a microsecond)."""

    @field_validator("last_error_kind", mode="before")
    @classmethod
    def _read_old_kind(cls, kind: Any, info: ValidationInfo) -> Any:
        """States written before the kinds were split (``http_4xx``, ``parse_error``) still load.

        A field validator, not a model one: a model validator before would have every state read
        through a Python dict, and this runs only for the states that hold a kind at all."""
        if isinstance(kind, str):
            status = info.data.get("last_status")
            return stored_kind(kind, status if isinstance(status, int) else None)
        return kind


class PollRecord(BaseModel):
    """One poll that asked the publisher, as the source's history keeps it."""

    model_config = ConfigDict(extra="ignore")

    at: UtcDatetime
    outcome: str
    """``modified`` (a body was read), ``not_modified`` (304), or the error kind."""
    status: int | None = None
    duration_ms: int = 0
    bytes: int = 0
    new: int = 0
    updated: int = 0
    error: str | None = None


class RedirectRecord(BaseModel):
    at: UtcDatetime
    status: int
    from_url: str
    to_url: str


class RejectedEntry(BaseModel):
    """A feed entry that failed normalising or validation: the poll keeps it as a dead letter
    (:mod:`service.store.dead_letters`) instead of dropping it with a log line."""

    index: int
    """Its place in the document (0 = first)."""
    entry: dict[str, str]
    """Its essential fields as the feed stated them (guid, link, title, dates, summary), each cut
    short: enough to find it in the feed, never the whole item."""
    error: str


class PushStatus(StrEnum):
    """Where a subscription to a publisher's hub stands (docs/websub.md#subscribing-to-publishers)."""

    DISCOVERED = "discovered"  # the feed names a hub; nothing asked of it yet
    PENDING = "pending"  # asked; the hub has not verified our intent yet
    ACTIVE = "active"  # verified: deliveries expected until lease_end, the pull is a slow backup
    FALLBACK = "fallback"  # a pull found what push had not delivered: polled normally until fallback_until
    DENIED = "denied"  # the hub refused (hub.mode=denied); asked again at retry_at
    FAILED = "failed"  # the request failed, was never verified or its lease ran out; asked again at retry_at
    UNSUBSCRIBING = "unsubscribing"  # the source left: unsubscribe requested, forgotten once verified


class PushSubscription(BaseModel):
    """Tributary's subscription to the WebSub hub a source's feed names (the subscriber side).

    Times are when things happened by the injected clock; counters add up over the source's
    subscriptions, so a resubscription does not wipe what operators need to judge the hub.
    """

    model_config = ConfigDict(extra="ignore")

    status: PushStatus
    hub: str
    topic: str
    id: str | None = Field(None, repr=False)
    """The unguessable last segment of the callback URL of the current attempt (a capability)."""
    secret: str | None = Field(None, exclude=True, repr=False)
    """``hub.secret`` of the current attempt: deliveries are signed with it. Never dumped."""
    discovered_at: UtcDatetime | None = None
    requested_at: UtcDatetime | None = None
    """When the last (un)subscribe request was sent."""
    verified_at: UtcDatetime | None = None
    """When the hub last verified our intent (the lease runs from here)."""
    active_since: UtcDatetime | None = None
    """First verification of the current attempt: pushes were expected from then on."""
    lease_seconds: int | None = None
    lease_end: UtcDatetime | None = None
    retry_at: UtcDatetime | None = None
    fallback_until: UtcDatetime | None = None
    error: str | None = None
    """Why the hub denied or the last request failed."""
    fallback_reason: str | None = None
    failures: int = 0
    """Failed attempts in a row (the retry backoff)."""
    deliveries: int = 0
    last_delivery: UtcDatetime | None = None
    last_thin_ping: UtcDatetime | None = None
    bad_signatures: int = 0
    last_bad_signature: UtcDatetime | None = None
    misses: int = 0
    last_miss: UtcDatetime | None = None

    def live(self, now: datetime) -> bool:
        """Verified and within its lease: the hub is expected to push."""
        return self.status is PushStatus.ACTIVE and self.lease_end is not None and now < self.lease_end
