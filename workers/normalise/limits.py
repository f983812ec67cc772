"""Caps on what one item may carry (``[limits]``, docs/article-schema.md#limits). Pure.

A 10 MB title used to be stored and republished whole, in every merged feed that carried it.
Here every field an article shows is bounded at ingest, and the cut is recorded, never silent:
:class:`Caps` remembers the name of each field it cut, which normalise stores on the article
(``truncated``, plus the ``truncated`` flag).

- Text is cut on a word boundary and ends with "…" (:func:`cut_text`).
- HTML is cut on an element boundary and sanitised again, so what is left is well-formed (open
  elements closed, no half tag); raw HTML far past the cap is cut before sanitising, so the
  sanitiser never chews on megabytes that would be thrown away (:meth:`Caps.html`).
- A list keeps its first members; a URL past the cap is dropped (a cut URL is another URL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from service.config import LimitsConfig

__all__ = ["RAW_FACTOR", "Caps", "cut_markup", "cut_text"]

T = TypeVar("T")
ELLIPSIS = "…"
RAW_FACTOR = 4
"""Raw input is cut at this many times a cap before any work is done on it: sanitising and
text extraction only ever shrink what they are given, so nothing that could survive is lost."""
_RESANITISE_TRIES = 3


def cut_text(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its head cut on a word boundary + "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace() and " " in cut:
        head = cut.rsplit(" ", 1)[0]
        if len(head) >= limit // 2:  # one enormous "word" is cut inside it rather than dropped
            cut = head
    return cut.rstrip(" ,;:.-–—") + ELLIPSIS


def cut_markup(html: str, limit: int) -> str:
    """The head of ``html`` of at most ``limit`` characters, ending before a tag rather than in
    one, and before an unfinished character reference."""
    if len(html) <= limit:
        return html
    head = html[:limit]
    tag = head.rfind("<")
    if tag >= limit // 2 and ">" not in head[tag:]:
        head = head[:tag]
    amp = head.rfind("&", max(0, len(head) - 12))
    if amp >= 0 and ";" not in head[amp:]:
        head = head[:amp]
    return head


class Caps:
    """Applies ``[limits]`` to the fields of one entry and records the name of each field cut."""

    def __init__(self, limits: LimitsConfig):
        self.limits = limits
        self.cut: set[str] = set()

    def text(self, field: str, value: str | None, limit: int) -> str | None:
        if value is None or len(value) <= limit:
            return value
        self.cut.add(field)
        return cut_text(value, limit)

    def raw(self, field: str, value: str | None, limit: int) -> str | None:
        """Raw input bounded before any work is done on it (``limit`` times :data:`RAW_FACTOR`)."""
        if value is None or len(value) <= limit * RAW_FACTOR:
            return value
        self.cut.add(field)
        return cut_markup(value, limit * RAW_FACTOR)

    def html(self, field: str, raw: str | None, limit: int, sanitise: Callable[[str], str | None]) -> str | None:
        """``raw`` sanitised and at most ``limit`` characters, still well-formed HTML."""
        bounded = self.raw(field, raw, limit)
        clean = sanitise(bounded) if bounded else None
        if clean is None or len(clean) <= limit:
            return clean
        self.cut.add(field)
        budget = limit
        for _ in range(_RESANITISE_TRIES):
            again = sanitise(cut_markup(clean, budget))
            if again is None or len(again) <= limit:
                return again
            budget -= len(again) - limit + 64  # the closing tags sanitising added, and some slack
            if budget <= 0:
                break
        return None  # nesting so deep its closing tags alone exceed the cap: nothing sane to keep

    def url(self, field: str, value: str | None) -> str | None:
        if value is None or len(value) <= self.limits.url_chars:
            return value
        self.cut.add(field)
        return None

    def first(self, field: str, values: Sequence[T], count: int) -> tuple[T, ...]:
        if len(values) <= count:
            return tuple(values)
        self.cut.add(field)
        return tuple(values[:count])
