"""Cross-source dedup decisions, pure: which URLs identify an article, which titles match,
and what a stored article looks like once another source's copy is merged into it.

The store (:meth:`service.store.articles.Store.upsert`) does the I/O: it looks up the owner of a
canonical URL (or a near-identical title), then writes what these functions return.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from rapidfuzz import fuzz, utils

from service.models import Article, SourceRef

__all__ = ["add_sources", "fuzzy_match", "identifies_article", "own_ref", "title_key"]


def identifies_article(url: str | None) -> bool:
    """Whether ``url`` can stand for one article across sources.

    A bare site root (``https://example.com/``) is what feeds put in every item when they have
    no per-item link; merging on it would fold a whole feed into one article.
    """
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.hostname) and (parts.path not in ("", "/") or bool(parts.query))


def add_sources(owner: Article, refs: Iterable[SourceRef], owner_ref: SourceRef | None = None) -> Article | None:
    """``owner`` with the refs of sources it does not list yet, or ``None`` when none is new.

    The owner keeps its content: the first source to carry an article is the one shown;
    later sources add provenance only. ``owner_ref`` stands in for the owner's own ref when
    the article was stored without one (before provenance was recorded).
    """
    known = {ref.id for ref in owner.sources} | {owner.source_id}
    fresh = [ref for ref in refs if ref.id not in known]
    if not fresh:
        return None
    current = tuple(owner.sources)
    if not any(ref.id == owner.source_id for ref in current):
        own = owner_ref or SourceRef(
            id=owner.source_id, name=owner.source_id, url=owner.url, first_seen=owner.first_seen
        )
        current = (own, *current)
    return owner.model_copy(update={"sources": current + tuple(fresh)})


def own_ref(article: Article, name: str, link: str | None) -> SourceRef:
    """The provenance entry of the source that produced ``article``."""
    return SourceRef(id=article.source_id, name=name, link=link, url=article.url, first_seen=article.first_seen)


def title_key(title: str) -> str:
    """The title as compared: case, punctuation and spacing do not count."""
    return utils.default_process(title)


def fuzzy_match(
    title: str,
    published: datetime,
    candidates: Iterable[tuple[str, str, str, float]],
    *,
    source_id: str,
    threshold: float,
    window_hours: float,
) -> str | None:
    """The id of the best candidate whose title matches ``title`` (ratio >= ``threshold``, 0..1).

    ``candidates`` are (id, source id, title key, published timestamp); candidates from the
    same source or outside the window never match: one source's two items are two items.
    """
    wanted = title_key(title)
    if not wanted:
        return None
    best_id, best_score = None, threshold * 100
    window = window_hours * 3600
    for candidate_id, candidate_source, candidate_title, candidate_ts in candidates:
        if candidate_source == source_id or abs(candidate_ts - published.timestamp()) > window:
            continue
        score = fuzz.ratio(wanted, candidate_title, score_cutoff=best_score)
        if score and score >= best_score:
            best_id, best_score = candidate_id, score
    return best_id
