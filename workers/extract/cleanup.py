"""A parsed page cleaned before its article is extracted: widgets, hidden blocks, split bodies.

Pure, in place on the tree. Each step fixes a way pages mislead a main-text extractor:

- :func:`clean_page` drops ``selectors.remove``, share/social/weather/related widgets recognised
  by a noise word in their class or id, and blocks the page hides with ``hidden`` or an inline
  ``display: none`` (menus, sign-in forms, schema.org copies of the article); it first unwraps
  embedded tweets, which articles quote as content but which those same words would remove;
- :func:`join_split_body` makes one container of an article body the page cut into several
  (ads in between), which an extractor would otherwise stop reading after the first.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.html import HtmlElement

from workers.extract.page import attributes, children, drop, elements, fold, link_share, select, text

__all__ = ["clean_page", "join_split_body"]

# Widgets no article body needs, matched case-insensitively in class and id attributes.
_NOISE_WORDS = ("share", "sharing", "social", "weather", "related", "newsletter", "cookie", "advert", "promo")
_NOISE = re.compile("|".join(_NOISE_WORDS))  # matched against lower-cased values
# A "noise" element this large is a layout wrapper whose class merely mentions a word...
_NOISE_MAX_CHARS = 1500
# ...and so is one holding this much running text (paragraphs of _PROSE_WORDS and more), few links.
_PROSE_WORDS = 25
_PROSE_CHARS = 500
_PROSE_MAX_LINKS = 0.2
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")
_STRUCTURAL = frozenset({"html", "body", "main", "article"})
_NOISE_ATTRIBUTES = etree.XPath("//@class | //@id | //@style | //@hidden")
_EMBEDDED_POSTS = etree.XPath("//blockquote[contains(@class, 'twitter-tweet')]")
_INVISIBLE = frozenset({"script", "style", "noscript"})

# Class names of article body containers (the vocabulary extractors look for).
_BODY_CLASS = re.compile(
    r"article[-_]{0,2}(?:body|content|text)|articlebody|post[-_]?(?:content|body|text|entry)|entry[-_]content"
    r"|story[-_]?(?:body|content)|body[-_]text"
)
_CLASSES = etree.XPath("//@class")
_CONTAINERS = frozenset({"div", "section"})
_CHUNK_MIN_CHARS = 200
_COUSIN_LEVELS = 3
_FOLLOWING_HEADINGS = etree.XPath("following::*[self::h1 or self::h2 or self::h3]")
_PRECEDING_HEADINGS = etree.XPath("preceding::*[self::h1 or self::h2 or self::h3]")


def clean_page(tree: HtmlElement, remove: list[str]) -> None:
    """Drop the elements ``remove`` selects, then page widgets and hidden blocks."""
    for selector in remove:
        for element in select(tree, selector):
            drop(element)
    _unwrap_embedded_posts(tree)
    widgets, hidden = _noise_candidates(tree)
    for element in widgets:
        if element.getparent() is not None and len(text(element)) <= _NOISE_MAX_CHARS and not _holds_prose(element):
            drop(element)
    if hidden:
        # A page hidden whole until its scripts run (anti-flicker) still has its article.
        half_page = len(text(tree)) / 2
        for element in hidden:
            if element.getparent() is not None and len(text(element)) <= half_page:
                drop(element)


def join_split_body(tree: HtmlElement) -> None:
    """Move the text of later same-class body containers into the first one.

    Only close cousins (a common ancestor within three levels) under the same ``<article>``,
    each holding real text, with no heading between them (a blog's front page puts one above
    each post), are joined.
    """
    groups: dict[tuple[str, str], list[HtmlElement]] = {}
    for value in attributes(_CLASSES(tree)):
        element = value.getparent()
        if isinstance(element, HtmlElement) and element.tag in _CONTAINERS and _BODY_CLASS.search(value.lower()):
            groups.setdefault((element.tag, str(value)), []).append(element)
    for group in groups.values():
        first, *rest = group
        if not rest or len(text(first)) < _CHUNK_MIN_CHARS:
            continue
        article = next(first.iterancestors("article"), None)
        for other in rest:
            if (
                other.getparent() is not None
                and first not in other.iterancestors()
                and next(other.iterancestors("article"), None) is article
                and _cousins(first, other)
                and len(text(other)) >= _CHUNK_MIN_CHARS
                and not _headings_between(first, other)
            ):
                first.extend(list(other))
                drop(other)


def _unwrap_embedded_posts(tree: HtmlElement) -> None:
    """Strip the class and id of each embedded tweet and of the wrappers around it alone, so
    widget filters (here and in trafilatura) leave a plain ``<blockquote>``."""
    for quote in elements(_EMBEDDED_POSTS(tree)):
        element: etree._Element = quote
        while element.tag not in _STRUCTURAL:
            for name in ("class", "id"):
                if name in element.attrib:
                    del element.attrib[name]
            parent = element.getparent()
            if (
                parent is None
                or (parent.text or "").strip()
                or (element.tail or "").strip()
                or any(_shows_text(sibling) for sibling in parent if sibling is not element)
            ):
                break
            element = parent


def _shows_text(element: etree._Element) -> bool:
    return element.tag not in _INVISIBLE and bool((element.tail or "").strip() or text(element).strip())


def _noise_candidates(tree: HtmlElement) -> tuple[list[HtmlElement], list[HtmlElement]]:
    """Widgets named by a noise word in their class or id, and elements hidden by their markup, in page order.

    One pass over the attributes, lower-cased by hand: a case-insensitive regex is ten times
    slower, and this runs over every class and id on the page.
    """
    widgets: dict[HtmlElement, None] = {}
    hidden: dict[HtmlElement, None] = {}
    for value in attributes(_NOISE_ATTRIBUTES(tree)):
        name = value.attrname
        if name == "hidden" or (name == "style" and _HIDDEN_STYLE.search(value.lower())):
            found = hidden
        elif name != "style" and _NOISE.search(value.lower()):
            found = widgets
        else:
            continue
        element = value.getparent()
        if isinstance(element, HtmlElement) and element.tag not in _STRUCTURAL:
            found[element] = None
    return list(widgets), list(hidden)


def _holds_prose(element: HtmlElement) -> bool:
    prose = sum(len(words) for p in children(element, "p") if len((words := text(p)).split()) >= _PROSE_WORDS)
    return prose >= _PROSE_CHARS and link_share(element, fold(text(element))) < _PROSE_MAX_LINKS


def _cousins(a: etree._Element, b: etree._Element) -> bool:
    near_a = list(a.iterancestors())[:_COUSIN_LEVELS]
    return any(ancestor in near_a for ancestor in list(b.iterancestors())[:_COUSIN_LEVELS])


def _headings_between(a: etree._Element, b: etree._Element) -> bool:
    after_a = set(elements(_FOLLOWING_HEADINGS(a)))
    return any(heading in after_a for heading in elements(_PRECEDING_HEADINGS(b)))
