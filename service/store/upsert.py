"""The pure decisions behind store writes: what an incoming article does to a stored one, and
which articles of an ingest batch one write can store together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service.models import Article, ArticleFlag, UpsertOutcome


def decide_upsert(old: Article | None, incoming: Article, now: datetime) -> tuple[UpsertOutcome, Article]:
    """Return the outcome and the article to store (``old`` itself when unchanged).

    Same ``content_hash`` -> unchanged, nothing is written, so a re-poll never moves ``updated``.
    A changed hash replaces the article but keeps its identity in time: ``first_seen`` stays, a
    ``published`` we had to invent stays, and ``updated`` moves forward: to the feed's own newer
    ``updated`` when it gives one, else to ``now``.
    """
    if old is None:
        return UpsertOutcome.NEW, incoming
    if old.content_hash == incoming.content_hash:
        return UpsertOutcome.UNCHANGED, old
    invented = {ArticleFlag.PUBLISHED_MISSING, ArticleFlag.DATE_CLAMPED} & incoming.flags
    published = old.published if invented else incoming.published
    feed_says_newer = ArticleFlag.UPDATED_MISSING not in incoming.flags and incoming.updated > old.updated
    updated = incoming.updated if feed_says_newer else max(now, old.updated)
    stored = incoming.model_copy(
        update={
            "first_seen": old.first_seen,
            "published": published,
            "updated": max(updated, published),
            "sources": old.sources or incoming.sources,
        }
    )
    return UpsertOutcome.UPDATED, stored


@dataclass(frozen=True)
class Seen:
    """What the store held for one incoming article when the batch read it (all keys WATCHed)."""

    old: Article | None
    """The stored document under the article's id."""
    alias: str | None
    """The article a copy with this id was merged into earlier, if any."""
    url_key: str | None
    """The key naming the owner of the article's canonical URL (None: the URL identifies nothing)."""
    url_owner: str | None
    """The id that key names."""


@dataclass(frozen=True)
class BatchWrite:
    index: int
    """Position of the incoming article in the batch."""
    outcome: UpsertOutcome
    """``NEW`` or ``UPDATED``."""
    stored: Article
    old: Article | None
    claim_url: str | None
    """The URL-owner key to point at the article (a new article whose URL no one owns yet)."""


@dataclass(frozen=True)
class BatchPlan:
    writes: list[BatchWrite] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    one_by_one: list[int] = field(default_factory=list)
    """Indexes the plain case does not cover (dedup with another source, a URL moving, an id or URL
    the batch holds twice): the caller upserts them singly, in order, after the batch commits."""


def plan_batch(incoming: Sequence[Article], seen: Sequence[Seen], now: datetime) -> BatchPlan:
    """Split a batch into what one write can decide now and what needs the one-article path.

    Writing the plain cases together is exactly writing them one after another: each is a new
    article nobody else claims, or a change to a stored one that keeps its URL, decided by
    :func:`decide_upsert`. An article that repeats an id or URL of an earlier one in the batch
    waits, with every later one sharing either, so the batch never decides on what it is
    writing itself and deferred articles keep their order.
    """
    plan = BatchPlan()
    ids: set[str] = set()
    urls: set[str] = set()
    for index, (article, found) in enumerate(zip(incoming, seen, strict=True)):
        repeats = article.id in ids or (found.url_key is not None and found.url_key in urls)
        ids.add(article.id)
        if found.url_key is not None:
            urls.add(found.url_key)
        if repeats:
            plan.one_by_one.append(index)
            continue
        old = found.old
        if old is None:
            others = found.url_owner is not None and found.url_owner != article.id
            if found.alias is not None or others:  # perhaps another source's copy: dedup decides
                plan.one_by_one.append(index)
            else:
                plan.writes.append(BatchWrite(index, UpsertOutcome.NEW, article, None, found.url_key))
            continue
        outcome, stored = decide_upsert(old, article, now)
        if outcome is UpsertOutcome.UNCHANGED:
            plan.unchanged.append(index)
        elif old.url != stored.url:  # the URL-owner keys move, and the new URL may merge it
            plan.one_by_one.append(index)
        else:
            plan.writes.append(BatchWrite(index, outcome, stored, old, None))
    return plan
