"""Page sources (``kind = "page"``): a news listing page without a feed.

The listing is fetched by the pipeline like a feed (conditional GET); here its article links
are read with ``selectors.links``, each page not fetched before is fetched once (at most
``max_pages_per_poll`` per poll, the rest next time), extracted, and normalised exactly like a
feed entry. Known pages are not refetched, so an article's later edits on its page are not
picked up: the listing only tells us what is new.
"""

from __future__ import annotations

from datetime import datetime

from service import keys
from service.config import SourceConfig
from service.errors import ErrorKind, ParseError
from workers.extract import extract_links
from workers.fetch.client import FetchResult
from workers.normalise.entry import normalise_entry
from workers.pages.article_pages import PageBatch, fetch_pages, unseen
from workers.parse.types import ParsedFeed
from workers.resources import Resources

__all__ = ["collect"]


async def collect(res: Resources, source: SourceConfig, listing: FetchResult, now: datetime) -> PageBatch:
    """Articles of the listing's pages not fetched before; raises ``ParseError`` for a bad listing."""
    if source.selectors is None or not source.selectors.links:  # SourceConfig refuses such a page source
        raise ParseError(source.id, ErrorKind.INTERNAL, "page source without selectors.links")
    try:
        links = await res.off_loop(extract_links, listing.body, listing.url, source.selectors.links)
    except ParseError as exc:  # labelled with the URL by the pure extractor; the source owns it here
        raise ParseError(source.id, exc.kind, f"listing page: {exc.message}") from exc
    seen_key = keys.pages_seen(source.id)
    new_links = await unseen(res.redis, seen_key, links)
    batch = PageBatch(seen_key=seen_key, complete=len(new_links) <= source.max_pages_per_poll)
    if not links:
        batch.warnings.append(f"no article links match {source.selectors.links!r} on the listing page")
    feed = ParsedFeed(link=listing.url)
    for outcome in await fetch_pages(res, source, new_links[: source.max_pages_per_poll]):
        if outcome.page is None:
            batch.warnings.append(f"article page {outcome.url} skipped: {outcome.error}")
            if outcome.transient:
                batch.complete = False
            else:
                batch.seen.append(outcome.url)
            continue
        try:
            batch.articles.append(
                normalise_entry(
                    outcome.page.entry,
                    source=source,
                    feed=feed,
                    now=now,
                    sanitise=res.settings.sanitise,
                    canonical=res.settings.canonical,
                    limits=res.settings.limits,
                )
            )
        except ValueError as exc:
            batch.warnings.append(f"article page {outcome.url} skipped: {' '.join(str(exc).split())}")
        batch.seen.append(outcome.url)
    return batch
