"""The times an article page states in its visible text: "2023-09-20 HKT 01:12" under the
headline, "Last updated: 2023-09-20 HKT 09:10" under the body. Pure.

News pages without date metadata still print when a story was published and last updated; a
day-level guess (htmldate) loses the time and never sees the update. Only short texts that name
a time of day count (a bare day is no better than the guess), so body text is never read as a
date. Labels decide the role: "updated", "last updated", "modified", "edited" mark the update;
"published", "posted", "created" and an unlabelled date-time mark publication, the first one in
page order (under the headline, before related stories further down).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo

from lxml.html import HtmlElement

from workers.parse.dates import parse_date

__all__ = ["StatedDates", "stated_dates"]

MAX_TEXT_CHARS = 80
"""Longer texts are sentences, not a dateline: a date inside one is not the page's."""
MAX_CANDIDATES = 200
"""Texts looked at per page at most: a dateline sits near the top of the article or its end."""

_TIME_OF_DAY = re.compile(r"(?<!\d)\d{1,2}[:.h]\d{2}(?!\d)")
_HAS_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_UPDATED = re.compile(r"^\s*(?:last\s+)?(?:updated|modified|edited|amended)\b\s*(?:on|at)?\s*:?\s*", re.IGNORECASE)
_PUBLISHED = re.compile(
    r"^\s*(?:first\s+)?(?:published|posted|created|released|issued)\b\s*(?:on|at)?\s*:?\s*", re.IGNORECASE
)
_SKIPPED = frozenset({"script", "style", "noscript", "template", "textarea", "option", "button"})
_INLINE = frozenset({"time", "span", "b", "strong", "em", "i", "abbr", "small", "a", "font"})


@dataclass(frozen=True)
class StatedDates:
    published: datetime | None = None
    updated: datetime | None = None


def stated_dates(tree: HtmlElement, default_tz: tzinfo) -> StatedDates:
    """The first published and the first updated date-time the page's text states."""
    published: datetime | None = None
    updated: datetime | None = None
    looked = 0
    for element in _timed(tree):
        text = _labelled(element)
        if len(text) > MAX_TEXT_CHARS or not _HAS_YEAR.search(text):
            continue
        looked += 1
        if looked > MAX_CANDIDATES:
            break
        if (label := _UPDATED.match(text)) is not None:
            if updated is None:
                updated = parse_date(text[label.end() :], default_tz)
        elif published is None:
            label = _PUBLISHED.match(text)
            published = parse_date(text[label.end() :] if label else text, default_tz)
        if published is not None and updated is not None:
            break
    return StatedDates(published, updated)


def _timed(tree: HtmlElement) -> Iterator[HtmlElement]:
    """Elements whose own text names a time of day, in page order."""
    for element in tree.iter():
        tag = element.tag
        if isinstance(tag, str) and tag not in _SKIPPED and (own := element.text) and _TIME_OF_DAY.search(own):
            yield element


def _labelled(element: HtmlElement) -> str:
    """The element's text; for an inline one without a label of its own ("Updated <time>…</time>")
    its short parent's, which holds the label."""
    text = " ".join(element.text_content().split())
    parent = element.getparent()
    if element.tag in _INLINE and parent is not None and not _UPDATED.match(text) and not _PUBLISHED.match(text):
        around = " ".join(parent.text_content().split())
        if len(around) <= MAX_TEXT_CHARS and (_UPDATED.match(around) or _PUBLISHED.match(around)):
            return around
    return text
