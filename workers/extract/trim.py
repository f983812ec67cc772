"""An extracted article body trimmed of what repeats the entry's other fields or closes the page.

Pure, in place on the body wrapper (a ``<div>`` of block elements). :func:`trim_body` drops:

- the lead image's figure and any block that only repeats its caption (the entry carries both);
- headings before the first real paragraph that repeat the headline or the standfirst (the
  entry's title and summary);
- what pages append after the article: calls to comment, share, subscribe or follow, copyright
  lines, a heading with nothing under it, a closing list of links.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from lxml import etree

from service.models import Image
from workers.extract.page import children, drop, fold, image_src, link_share, text

__all__ = ["trim_body"]

_CAPTION_BLOCKS = "p", "div", "li", "figcaption", "blockquote", "span", "h2", "h3", "h4", "h5", "h6", "small", "em"
_HEADINGS = "h1", "h2", "h3", "h4", "h5", "h6"
_TEXT_BLOCKS = "p", "ul", "ol", "table", "blockquote", "pre"
_WORD = re.compile(r"\w+")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")  # "___" rules off the boilerplate, it is no text
_LEAD_WORDS = 12  # a text block this long starts the article text proper
_SAME_WORDS = 0.6  # share of distinct words two texts have in common to be the same text, reworded
_TAIL_NOISE = re.compile(
    r"©|(?:(?:\d+\s+)?comments?|tags?|filed under|share (?:this|it)|like this (?:story|article)|see more"
    r"|you (?:may|might) also like|related|popular on|more from|read more|read next|sign up|subscribe"
    r"|follow (?:us|[\w@]+ on)|copyright|all rights reserved|click here|get the latest)\b",
    re.IGNORECASE,
)
_TAIL_NOISE_WORDS = 25
_LINK_LIST_SHARE = 0.8


def trim_body(body: etree._Element, image: Image | None, base_url: str, repeats: tuple[str, ...]) -> None:
    """Trim ``body``; ``repeats`` are the texts a lead heading may repeat (title, summary…)."""
    _drop_caption_copies(body, image, base_url)
    _drop_repeated_headings(body, repeats)
    _trim_tail(body)


def _drop_caption_copies(body: etree._Element, image: Image | None, base_url: str) -> None:
    if image is None:
        return
    for img in list(children(body, "img")):
        if (src := image_src(img)) and urljoin(base_url, src.strip()) == image.url:
            figure = next(img.iterancestors("figure"), None)
            drop(figure if figure is not None else img)
    if not image.caption:
        return
    copies = {_caption_key(image.caption)}
    if image.credit:
        copies.add(_caption_key(f"{image.caption} {image.credit}"))
    for element in list(children(body, *_CAPTION_BLOCKS)):
        if element.getparent() is not None and _caption_key(text(element)) in copies:
            drop(element)


def _drop_repeated_headings(body: etree._Element, repeats: tuple[str, ...]) -> None:
    known = [words for text in repeats if (words := _words(text))]
    for element in list(children(body, *_TEXT_BLOCKS, *_HEADINGS)):
        content = text(element)
        if element.tag in _TEXT_BLOCKS:
            if len(content.split()) >= _LEAD_WORDS:
                return
        elif (words := _words(content)) and any(_similar(words, other) for other in known):
            drop(element)


def _trim_tail(body: etree._Element) -> None:
    while len(body):
        last = body[-1]
        content = fold(text(last))
        if not (
            not _LETTER_OR_DIGIT.search(content)
            or last.tag in _HEADINGS
            or (len(content.split()) <= _TAIL_NOISE_WORDS and _TAIL_NOISE.match(content))
            or (last.tag in ("ul", "ol") and link_share(last, content) >= _LINK_LIST_SHARE)
        ):
            return
        drop(last)


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.casefold()))


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return len(a & b) >= _SAME_WORDS * len(a | b)


def _caption_key(text: str) -> str:
    return fold(text).casefold().rstrip(" .")
