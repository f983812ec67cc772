"""Extract stage for pages: article links on a listing page, and one article from its page.

Pure: HTML in, :class:`workers.parse.types.ParsedEntry` out, so extracted articles go through
the same normalise (and sanitise) stage as feed entries.
"""

from workers.extract.article import (
    DateSource,
    ExtractedPage,
    extract_article,
    extract_page,
    split_credit,
)
from workers.extract.links import extract_links
from workers.extract.page import MAX_PAGE_BYTES, load_page

__all__ = [
    "MAX_PAGE_BYTES",
    "DateSource",
    "ExtractedPage",
    "extract_article",
    "extract_links",
    "extract_page",
    "load_page",
    "split_credit",
]
