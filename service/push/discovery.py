"""Where a feed's WebSub hub is, and which topic URL to subscribe to (W3C WebSub section 4).

Pure: response headers and what the parser found in the document in, a :class:`HubLink` out.
HTTP ``Link`` headers (RFC 8288) come first, as the spec asks: when they name a hub, hub and
topic are both taken from them (the document's ``rel="self"`` only fills a missing one). Else
the document's own links: ``<atom:link rel="hub">`` in RSS, ``<link rel="hub">`` in Atom,
``hubs`` in JSON Feed (``workers.parse`` hands them over as ``ParsedFeed.hubs`` / ``self_url``).
Without a ``rel="self"`` the URL that was fetched is the topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

MAX_URL_LENGTH = 2048
MAX_HEADER_CHARS = 16 * 1024
MAX_LINKS = 64


@dataclass(frozen=True)
class Link:
    """One link of a ``Link`` header: its target (as written) and its relation types (lower case)."""

    target: str
    rels: frozenset[str]


@dataclass(frozen=True)
class HubLink:
    """A hub to subscribe at and the topic to subscribe to, both absolute http(s) URLs."""

    hub: str
    topic: str


def parse_link_header(value: str) -> list[Link]:
    """RFC 8288 ``Link`` values (several headers joined with ``,`` included); malformed links are
    skipped, never fatal. Commas and semicolons inside ``<...>`` and quoted strings are data."""
    text = value[:MAX_HEADER_CHARS]
    links: list[Link] = []
    i, n = 0, len(text)
    while i < n and len(links) < MAX_LINKS:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        if text[i] != "<":
            i = _skip_link(text, i)
            continue
        close = text.find(">", i + 1)
        if close < 0:
            break
        target = text[i + 1 : close].strip()
        i = close + 1
        rels: set[str] = set()
        while i < n:
            while i < n and text[i] in " \t":
                i += 1
            if i >= n or text[i] == ",":
                break
            if text[i] != ";":
                i = _skip_link(text, i)
                break
            name, param, i = _param(text, i + 1)
            if name == "rel" and not rels:  # RFC 8288 3.3: only the first rel counts
                rels = {r.lower() for r in param.split()}
        links.append(Link(target, frozenset(rels)))
    return links


def _param(text: str, i: int) -> tuple[str, str, int]:
    """One ``name[=value]`` after a ``;``: (lowercased name, unquoted value, index after it)."""
    n = len(text)
    start = i
    while i < n and text[i] not in "=;,":
        i += 1
    name = text[start:i].strip().lower()
    if i >= n or text[i] != "=":
        return name, "", i
    i += 1
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == '"':
        chars: list[str] = []
        i += 1
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n:
                i += 1
            chars.append(text[i])
            i += 1
        return name, "".join(chars), i + 1
    start = i
    while i < n and text[i] not in ";,":
        i += 1
    return name, text[start:i].strip(), i


def _skip_link(text: str, i: int) -> int:
    """Past the next ``,`` outside quotes and angle brackets (the end of a malformed link)."""
    quoted = bracketed = False
    while i < len(text):
        char = text[i]
        if char == '"' and not bracketed:
            quoted = not quoted
        elif char == "<" and not quoted:
            bracketed = True
        elif char == ">" and not quoted:
            bracketed = False
        elif char == "," and not quoted and not bracketed:
            return i + 1
        i += 1
    return i


def web_url(value: str | None, base: str) -> str | None:
    """``value`` resolved against ``base`` if it is a usable http(s) URL with a host, else None."""
    if not value:
        return None
    value = value.strip()
    if not value or len(value) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x20 for c in value):
        return None
    try:
        url = urljoin(base, value)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL_LENGTH:
        return None
    return url


def discover(
    headers: Mapping[str, str], feed_hubs: Sequence[str], feed_self: str | None, fetched_url: str
) -> HubLink | None:
    """The hub and topic of a fetched feed, or None when it names no usable hub.

    ``headers`` are the response's (names lower case, repeated ``Link`` headers joined with
    ``,``); ``feed_hubs`` / ``feed_self`` what the document says; relative URLs resolve against
    ``fetched_url``.
    """
    links = parse_link_header(headers.get("link", ""))
    header_hubs = [u for link in links if "hub" in link.rels if (u := web_url(link.target, fetched_url))]
    header_self = next((u for link in links if "self" in link.rels if (u := web_url(link.target, fetched_url))), None)
    document_self = web_url(feed_self, fetched_url)
    hub: str | None
    if header_hubs:
        hub, topic = header_hubs[0], header_self or document_self
    else:
        hub = next((u for h in feed_hubs if (u := web_url(h, fetched_url))), None)
        topic = document_self or header_self
    if hub is None:
        return None
    return HubLink(hub, topic or fetched_url)
