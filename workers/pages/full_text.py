"""Full text for summary-only feeds (``full_content = true``).

For every feed item we have not extracted yet, fetch its page, extract the article, and store
the extracted HTML as ``content``. The page's title and image are used where it has them, its
dates as :func:`merged_dates` says; the feed's stay otherwise. Authors, tags and enclosures stay
the feed's.

The stored article then differs from what the feed alone gives, so the pipeline's hash check
sees every such item as changed on each poll. What decides is the zset of
``{article id}:{feed-side content hash}`` we extracted: an item the feed has not changed is
dropped here (nothing fetched, nothing queued); an item the feed revised is fetched again.
A page that cannot be fetched or extracted leaves the feed's item as it is, with a warning.
"""

from __future__ import annotations

from datetime import datetime

from service import keys
from service.config import Settings, SourceConfig
from service.models import Article, ArticleFlag
from workers.extract import DateSource, ExtractedPage
from workers.normalise.entry import normalise_entry
from workers.pages.article_pages import PageBatch, fetch_pages, unseen
from workers.parse.types import ParsedEntry, ParsedFeed
from workers.resources import Resources

__all__ = ["complete", "merge", "merged_dates"]


async def complete(res: Resources, source: SourceConfig, fresh: list[Article], now: datetime) -> PageBatch:
    """``fresh`` (new or changed per the store) with full text; unchanged feed items dropped."""
    seen_key = keys.full_text_seen(source.id)
    members = {_member(a): a for a in fresh}
    todo = [members[m] for m in await unseen(res.redis, seen_key, list(members))]
    batch = PageBatch(seen_key=seen_key, complete=len(todo) <= source.max_pages_per_poll)
    todo = todo[: source.max_pages_per_poll]
    urls = list(dict.fromkeys(a.url for a in todo if a.url))
    outcomes = {o.url: o for o in await fetch_pages(res, source, urls)}
    for article in todo:
        outcome = outcomes.get(article.url or "")
        if outcome is not None and outcome.page is not None:
            try:
                batch.articles.append(merge(article, outcome.page, source, now, settings=res.settings))
                batch.seen.append(_member(article))
                continue
            except ValueError as exc:
                batch.warnings.append(f"full text of {article.url} not used: {' '.join(str(exc).split())}")
        elif outcome is not None:
            batch.warnings.append(f"full text of {article.url} not fetched: {outcome.error}")
        batch.articles.append(article)
    return batch


def merge(
    article: Article, extracted: ExtractedPage, source: SourceConfig, now: datetime, *, settings: Settings
) -> Article:
    """The feed's ``article`` completed by its page; same id. Raises ``ValueError`` if invalid."""
    page = extracted.entry
    feed_published = None if ArticleFlag.PUBLISHED_MISSING in article.flags else article.published
    feed_updated = None if ArticleFlag.UPDATED_MISSING in article.flags else article.updated
    published, updated = merged_dates(feed_published, feed_updated, extracted)
    entry = ParsedEntry(
        guid=article.guid,
        link=article.url,
        title=page.title or article.title,
        summary=article.summary,
        content=page.content or article.content,
        authors=article.authors or page.authors,
        tags=article.tags,
        published=published,
        updated=updated,
        enclosures=article.enclosures,
        image=page.image or article.image,
        language=article.language or page.language,
    )
    merged = normalise_entry(
        entry,
        source=source,
        feed=ParsedFeed(link=source.url),
        now=now,
        sanitise=settings.sanitise,
        canonical=settings.canonical,
        limits=settings.limits,
    )
    # Identity never moves: the id the feed item got is the one the store knows.
    return merged if merged.id == article.id else merged.model_copy(update={"id": article.id})


def merged_dates(
    feed_published: datetime | None, feed_updated: datetime | None, extracted: ExtractedPage
) -> tuple[datetime | None, datetime | None]:
    """(published, updated) of a feed item completed by its page; None where neither states one.

    - published: what the page states (a selector or its metadata), else the feed item's, else
      the page's day-level guess: a guess never replaces a date the feed gave.
    - updated: the later of the feed item's and the page's "last updated". A page revised after
      the feed item was written says so; a page that says less than the feed does not move
      ``updated`` back (a later revision of the article could not move it forward again).
    """
    page = extracted.entry
    stated = page.published if extracted.published_from is not DateSource.GUESS else None
    published = stated or feed_published or page.published
    updated = max((d for d in (feed_updated, page.updated) if d is not None), default=None)
    return published, updated


def _member(article: Article) -> str:
    return f"{article.id}:{article.content_hash}"
