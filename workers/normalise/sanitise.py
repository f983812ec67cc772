"""Sanitising of the HTML we republish (summary, content), with nh3 (Rust's ammonia). Pure.

ammonia parses with html5ever (what browsers do) and guarantees: no script, style or unknown
elements, no event handlers or ``style`` attributes, only known URL schemes (so no
``javascript:``), comments dropped, ``rel="noopener noreferrer"`` on every link. Our own rules
for the URL attributes it keeps are applied to its output by :func:`_rewrite_urls`, in the same
order and with the same effect as an ammonia attribute filter: relative URLs made absolute
against the item's link, ``data:`` URLs refused (except ``<img src>`` when
``[sanitise] allow_data_images``), iframes off the video-host allow-list losing their ``src``,
tracking parameters leaving links.

Why not an attribute filter: nh3 calls a filter back for every attribute it keeps, and each
call takes the interpreter lock again. Without one, ``clean`` runs without the lock from start
to end, so a worker's event loop (and other parse threads) run meanwhile, and a call costs less.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Sequence
from functools import lru_cache
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
_ATTR = re.compile(r' ([^\s="\'>/]+)="([^"]*)"')
_FILTERED_ATTRIBUTES = frozenset({"href", "src", "cite", "poster", "srcset"})
_FILTERED_WRITTEN = tuple(f'{name}="' for name in _FILTERED_ATTRIBUTES)
# html5ever's escapes inside attribute values, both ways.
_ESCAPES = str.maketrans({"&": "&amp;", "\xa0": "&nbsp;", '"': "&quot;", "<": "&lt;", ">": "&gt;"})
_UNESCAPE = re.compile("&(amp|nbsp|quot|lt|gt);")
_UNESCAPED = {"amp": "&", "nbsp": "\xa0", "quot": '"', "lt": "<", "gt": ">"}
# Text nh3 hands back as it is (one text node, nothing to escape): printable ASCII, tabs and
# newlines, without "<", ">" or "&". Most plain-text summaries are.
_PLAIN_TEXT = re.compile(r"[\t\n !-%'-;=?-~]*")


@lru_cache(maxsize=1)
def _attributes() -> dict[str, set[str]]:
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    for tag, names in _EXTRA_ATTRIBUTES.items():
        attributes.setdefault(tag, set()).update(names)
    return attributes


@lru_cache(maxsize=1)
def _url_tags() -> re.Pattern[str]:
    """The start tags that may hold an attribute of :data:`_FILTERED_ATTRIBUTES`, with at least
    one attribute (the other tags are not looked at: at every "<" the name fails at once)."""
    names = sorted(tag for tag, allowed in _attributes().items() if allowed & _FILTERED_ATTRIBUTES)
    return re.compile(rf"<(?P<tag>{'|'.join(names)})(?P<attrs>(?: [^\s=\"'>/]+=\"[^\"]*\")+)>")


@lru_cache(maxsize=2)
def _cleaner(allow_data_images: bool) -> nh3.Cleaner:
    """One configured ammonia builder per ``allow_data_images``, reused: building it for every
    call cost more than cleaning a 2 KB item."""
    schemes = nh3.ALLOWED_URL_SCHEMES | {"data"} if allow_data_images else nh3.ALLOWED_URL_SCHEMES
    return nh3.Cleaner(
        tags=nh3.ALLOWED_TAGS | _EXTRA_TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "object", "embed"},
        attributes=_attributes(),
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
    cleaned = _cleaner(config.allow_data_images).clean(html)
    if "<iframe" in cleaned:
        cleaned = _IFRAME.sub(_iframe_without_text, cleaned)
    if any(written in cleaned for written in _FILTERED_WRITTEN):
        cleaned = _rewrite_urls(cleaned, base, config.iframe_hosts, config.allow_data_images, canonical)
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


def _rewrite_urls(
    cleaned: str, base: str | None, iframe_hosts: Sequence[str], allow_data_images: bool, canonical: CanonicalConfig
) -> str:
    """``cleaned`` with :func:`_attribute` applied to the URL attributes of its tags.

    What ammonia does with an attribute filter's answers, done on its output: the value the
    filter is given is the attribute's (html5ever's escapes undone), a new value is written back
    escaped as html5ever escapes it, and an attribute refused is removed by Rust's
    ``Vec::swap_remove`` (the tag's last attribute takes its place), so the result is the very
    string ammonia would have written.
    """

    def tag(match: re.Match[str]) -> str:
        pairs = _ATTR.findall(match["attrs"])
        refused: list[int] = []
        changed = False
        for index, (name, written) in enumerate(pairs):
            local = name.rpartition(":")[2]  # html5ever writes xlink:href; ammonia's filter sees href
            if local not in _FILTERED_ATTRIBUTES:
                continue
            value = _UNESCAPE.sub(_unescaped, written) if "&" in written else written
            new = _attribute(match["tag"], local, value, base, iframe_hosts, allow_data_images, canonical)
            if new is None:
                refused.append(index)
            elif new != value:
                pairs[index] = (name, new.translate(_ESCAPES))
            else:
                continue
            changed = True
        if not changed:
            return match[0]
        for index in reversed(refused):
            last = pairs.pop()
            if index < len(pairs):
                pairs[index] = last
        return "<" + match["tag"] + "".join(f' {name}="{value}"' for name, value in pairs) + ">"

    return _url_tags().sub(tag, cleaned)


def _unescaped(match: re.Match[str]) -> str:
    return _UNESCAPED[match[1]]


def _iframe_without_text(match: re.Match[str]) -> str:
    return f"<iframe{match['attrs']}></iframe>"


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
