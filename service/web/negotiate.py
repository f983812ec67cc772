"""HTTP content negotiation, pure: which feed format for an ``Accept`` header, which content
coding for an ``Accept-Encoding`` header (RFC 9110 12.5, q-values honoured)."""

from __future__ import annotations

from functools import lru_cache

# Media type -> what we serve for it. Generic XML means "a feed in XML": Atom, our default.
MEDIA_FORMATS = {
    "application/atom+xml": "atom",
    "application/rss+xml": "rss",
    "application/feed+json": "json",
    "application/json": "json",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/xml": "atom",
    "text/xml": "atom",
}
DEFAULT_FORMAT = "atom"
CODINGS = ("br", "gzip")  # preference on equal q: smaller first


def _parse(header: str) -> list[tuple[str, float, int]]:
    """(lowercased token, q, position) per element; malformed q counts as 0 (not acceptable)."""
    parsed = []
    for position, element in enumerate(header.split(",")):
        token, _, params = element.partition(";")
        token = token.strip().lower()
        if not token:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        parsed.append((token, q, position))
    return parsed


@lru_cache(maxsize=512)
def negotiate_format(accept: str | None) -> str:
    """Best format for ``accept``: highest q, then the most specific range, then header order.

    No header, ``*/*`` or nothing we know gives Atom (readers that send odd headers still get a
    feed). A browser's ``text/html,...,*/*;q=0.8`` gets the HTML page.
    """
    if not accept:
        return DEFAULT_FORMAT
    best: tuple[float, int, int] | None = None
    chosen = DEFAULT_FORMAT
    for media_range, q, position in _parse(accept[:2000]):
        if q <= 0:
            continue
        if media_range in MEDIA_FORMATS:
            fmt, specificity = MEDIA_FORMATS[media_range], 2
        elif media_range in ("*/*", "application/*"):
            fmt, specificity = DEFAULT_FORMAT, 0
        elif media_range == "text/*":
            fmt, specificity = "html", 1
        else:
            continue
        rank = (q, specificity, -position)
        if best is None or rank > best:
            best, chosen = rank, fmt
    return chosen


@lru_cache(maxsize=512)
def choose_coding(accept_encoding: str | None) -> str | None:
    """``"br"``, ``"gzip"`` or None (identity) for an ``Accept-Encoding`` header."""
    if not accept_encoding:
        return None
    qs = {coding: q for coding, q, _ in _parse(accept_encoding[:1000])}
    wildcard = qs.get("*")
    best, best_q = None, 0.0
    for coding in CODINGS:
        q = qs.get(coding, wildcard if wildcard is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    # An unlisted identity is acceptable but least preferred: any acceptable coding beats it.
    identity_q = qs.get("identity", 0.0)
    if best is not None and best_q >= identity_q:
        return best
    return None  # identity, even if the client refused it: better than a 406 for a feed reader
