"""The pure decision behind every store write: what an incoming article does to a stored one."""

from __future__ import annotations

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
