"""Sanitising of the HTML we republish (summary, content), with nh3 (Rust's ammonia). Pure.

One pass does it all: ammonia parses with html5ever (what browsers do) and calls back into
:func:`_attribute` for every attribute it would keep, which is where relative URLs are made
absolute against the item's link, ``data:`` URLs are refused (except ``<img src>`` when
``[sanitise] allow_data_images``), iframes off the video-host allow-list lose their ``src``,
and tracking parameters leave links. What ammonia guarantees on its own: no script, style or
unknown elements, no event handlers or ``style`` attributes, only known URL schemes (so no
``javascript:``), comments dropped, ``rel="noopener noreferrer"`` on every link.
"""

from __future__ import annotations

import html as htmllib
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

import nh3

from service.config import CanonicalConfig, SanitiseConfig
from service.urls import join_url
from workers.normalise.canonical import strip_tracking

__all__ = ["first_image", "resolve_srcset", "sanitise_html"]

DEFAULT = SanitiseConfig()
DEFAULT_CANONICAL = CanonicalConfig()

_EXTRA_TAGS = {"iframe", "picture", "source", "video", "audio", "track", "figure", "figcaption", "tfoot"}
_EXTRA_ATTRIBUTES = {
    "img": {"srcset", "sizes", "title", "loading"},
    "iframe": {"src", "width", "height", "allowfullscreen", "title"},
    "video": {"src", "poster", "controls", "width", "height", "preload"},
    "audio": {"src", "controls", "preload"},
    "source": {"src", "srcset", "type", "media", "sizes"},
    "track": {"src", "kind", "srclang", "label"},
    "a": {"title"},
    "abbr": {"title"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
}
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "poster"})
# Post-processing reads nh3's own serialisation, which is strict: ` name="value"` attributes
# with `"`, `<` and `>` escaped inside values. Attributes are still matched whole (never
# `[^>]*`), so a cut can only ever fall on a tag boundary, whatever a value holds.
_ATTRS = r'(?P<attrs>(?: [^\s="\'>/]+="[^"]*")*)'
# html5ever keeps an iframe's inner text as raw text; it is never shown, so it goes.
_IFRAME = re.compile(r"<iframe" + _ATTRS + r">.*?</iframe>", re.DOTALL)
_IMG = re.compile(r"<img" + _ATTRS + r">")
_SRC = re.compile(r' src="(?P<src>[^"]*)"')
# Text nh3 hands back as it is (one text node, nothing to escape): printable ASCII, tabs and
# newlines, without "<", ">" or "&". Most plain-text summaries are.
_PLAIN_TEXT = re.compile(r"[\t\n !-%'-;=?-~]*")


@lru_cache(maxsize=1)
def _attributes() -> dict[str, set[str]]:
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    for tag, names in _EXTRA_ATTRIBUTES.items():
        attributes.setdefault(tag, set()).update(names)
    return attributes


class _Call(NamedTuple):
    """What the attribute filter needs of the one ``sanitise_html`` call running on this thread
    (a tuple: made for every call, and an iframe is too rare to prepare its hosts for)."""

    base: str | None
    iframe_hosts: Sequence[str]
    """As configured: compared case-insensitively."""
    allow_data_images: bool
    canonical: CanonicalConfig


_calls = threading.local()


def _filter(tag: str, name: str, value: str) -> str | None:
    call: _Call = _calls.current
    return _attribute(tag, name, value, call.base, call.iframe_hosts, call.allow_data_images, call.canonical)


@lru_cache(maxsize=2)
def _cleaner(allow_data_images: bool) -> nh3.Cleaner:
    """One configured ammonia builder per ``allow_data_images``, reused: building it for every
    call cost more than cleaning a 2 KB item. Per-call settings reach :func:`_filter` through
    ``_calls`` (nh3 calls it back on the calling thread, so parallel polls never mix them)."""
    schemes = nh3.ALLOWED_URL_SCHEMES | {"data"} if allow_data_images else nh3.ALLOWED_URL_SCHEMES
    return nh3.Cleaner(
        tags=nh3.ALLOWED_TAGS | _EXTRA_TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "object", "embed"},
        attributes=_attributes(),
        attribute_filter=_filter,
        url_schemes=schemes,
        strip_comments=True,
        link_rel="noopener noreferrer",
    )


def sanitise_html(
    html: str | None,
    base: str | None,
    config: SanitiseConfig = DEFAULT,
    canonical: CanonicalConfig = DEFAULT_CANONICAL,
) -> str | None:
    """``html`` made safe to republish, its links absolute against ``base``; ``None`` when empty."""
    if not html or not html.strip():
        return None
    if _PLAIN_TEXT.fullmatch(html):
        return html.strip()
    _calls.current = _Call(base, config.iframe_hosts, config.allow_data_images, canonical)
    try:
        cleaned = _cleaner(config.allow_data_images).clean(html)
    finally:
        _calls.current = None
    if "<iframe" in cleaned:
        cleaned = _IFRAME.sub(_iframe_or_nothing, cleaned)
    if "<img" in cleaned:
        # An image whose every URL was refused (data:, javascript:) shows nothing.
        cleaned = _IMG.sub(_img_or_nothing, cleaned)
    return cleaned.strip() or None


def first_image(html: str | None) -> str | None:
    """``src`` of the first http(s) ``<img>`` of sanitised HTML (so it is already absolute)."""
    if not html or "<img" not in html:
        return None
    for match in _IMG.finditer(html):
        found = _SRC.search(match["attrs"])
        src = htmllib.unescape(found["src"]) if found else ""
        if src.lower().startswith(("http://", "https://")):
            return src
    return None


def _iframe_or_nothing(match: re.Match[str]) -> str:
    attrs = match["attrs"]
    return f"<iframe{attrs}></iframe>" if _SRC.search(attrs) else ""


def _img_or_nothing(match: re.Match[str]) -> str:
    attrs = match["attrs"]
    return match[0] if _SRC.search(attrs) or ' srcset="' in attrs else ""


def _attribute(
    tag: str,
    name: str,
    value: str,
    base: str | None,
    iframe_hosts: Sequence[str],
    allow_data_images: bool,
    canonical: CanonicalConfig,
) -> str | None:
    if name == "srcset":
        return resolve_srcset(value, base, keep_data=allow_data_images and tag in ("img", "source"))
    if name not in _URL_ATTRIBUTES:
        return value
    stripped = value.strip()
    if stripped[:5].lower() == "data:":
        allowed = allow_data_images and tag == "img" and name == "src" and stripped[5:11].lower() == "image/"
        return stripped if allowed else None
    url = _join(base, stripped) if base else stripped
    if tag == "iframe":
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        ok = parts.scheme in ("http", "https") and (parts.hostname or "") in {h.lower() for h in iframe_hosts}
        return url if ok else None
    if tag == "a" and name == "href":
        return strip_tracking(url, canonical)
    return url


def resolve_srcset(srcset: str, base: str | None, *, keep_data: bool = True) -> str:
    """Resolve each candidate URL of a srcset; URLs may contain commas (``data:`` URLs)."""
    candidates: list[str] = []
    position, length = 0, len(srcset)
    while position < length:
        while position < length and (srcset[position].isspace() or srcset[position] == ","):
            position += 1
        start = position
        while position < length and not srcset[position].isspace():
            position += 1
        url, descriptor = srcset[start:position], ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start = position
            while position < length and srcset[position] != ",":
                position += 1
            descriptor = srcset[start:position].strip()
        if not url:
            continue
        if url[:5].lower() == "data:":
            if not keep_data:
                continue
        elif url[:11].lower() == "javascript:":
            continue
        elif base:
            url = _join(base, url)
        candidates.append(f"{url} {descriptor}".rstrip())
    return ", ".join(candidates)


def _join(base: str | None, url: str) -> str:
    if not base:
        return url
    try:
        return join_url(base, url)
    except ValueError:
        return url
