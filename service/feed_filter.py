"""What a merged feed lets through, pure: its configured filters (keywords, languages, minimum
date) and the plain text they look at.

Below the store on purpose: the change log (service/store/changelog.py) records which feeds an
article is in at the moment a change commits, and must judge that exactly as the feed views do.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache

from service.config import FeedConfig, Settings
from service.models import Article
from service.text import plain_text

__all__ = ["feed_filter_matches", "feeds_passing", "searchable_text", "word_pattern"]


@lru_cache(maxsize=1024)
def word_pattern(keyword: str) -> re.Pattern[str]:
    """Word-ish match: the keyword not glued to letters or digits on either side."""
    return re.compile(r"(?<!\w)" + re.escape(keyword.lower()) + r"(?!\w)")


def searchable_text(article: Article) -> str:
    """Title and summary as lowercased plain text: what keyword filters and ``?q=`` look at."""
    summary = plain_text(article.summary) if article.summary else ""
    return f"{article.title}\n{summary}".lower()


def _min_date(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # a TOML local time is UTC
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def feed_filter_matches(feed: FeedConfig, article: Article, text: str | None = None) -> bool:
    """The feed's configured filters (include/exclude keywords, languages, minimum date)."""
    minimum = _min_date(feed.min_date)
    if minimum is not None and article.published < minimum:
        return False
    if feed.languages and article.language:
        language = article.language.lower()
        if not any(language == lang.lower() or language.startswith(lang.lower() + "-") for lang in feed.languages):
            return False
    if feed.include_keywords or feed.exclude_keywords:
        text = searchable_text(article) if text is None else text
        if feed.include_keywords and not any(word_pattern(k).search(text) for k in feed.include_keywords):
            return False
        if any(word_pattern(k).search(text) for k in feed.exclude_keywords):
            return False
    return True


def feeds_passing(settings: Settings, article: Article) -> list[str]:
    """Names of the configured feeds whose filters let ``article`` through (membership aside)."""
    # The plain text costs more than the rest of a change-log entry: made only if a filter reads it.
    keywords = any(feed.include_keywords or feed.exclude_keywords for feed in settings.feeds)
    text = searchable_text(article) if keywords else None
    return [feed.name for feed in settings.feeds if feed_filter_matches(feed, article, text)]
